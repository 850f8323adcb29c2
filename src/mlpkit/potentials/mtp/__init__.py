"""The linear moment-tensor family (MTP): ``E = Σ_i Σ_α c_{Z_i α} B_α(R_i)``, fitted in one solve, with γ.

``basis`` (moment tensors, invariants, their exact pair Jacobian), ``fit`` (weighted ridge least squares),
``grade`` (MaxVol active set and the extrapolation grade), ``settings`` (typed hyperparameters and fit settings),
``potential`` (the :class:`MTPPotential`).
"""

from mlpkit.potentials.mtp.basis import MomentTensorBasis
from mlpkit.potentials.mtp.grade import ActiveSet, maxvol
from mlpkit.potentials.mtp.potential import MTPPotential
from mlpkit.potentials.mtp.settings import MTPFitSettings, MTPHyperparameters

__all__ = ["ActiveSet", "MTPFitSettings", "MTPHyperparameters", "MTPPotential", "MomentTensorBasis", "maxvol"]
