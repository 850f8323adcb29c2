"""The GAP family: a sparse Gaussian process on the SOAP power spectrum, with its predictive variance.

``potential`` (the :class:`GAPPotential`: fit, prediction with variance, save/load), ``kernel`` (kernel rows of
energies, forces and virials; sparse-point selection), ``soap`` (featomic's power spectrum, normalised, with exact
gradients), ``twobody`` (the optional pair-distance GP), ``fitting`` (the QR solve), ``selection`` (batch
selection by greedy variance reduction), ``settings`` (typed hyperparameters and fit settings).
"""

from mlpkit.potentials.gap.potential import GAPPotential
from mlpkit.potentials.gap.settings import GAPFitSettings, GAPHyperparameters, default_hyperparameters

__all__ = ["GAPFitSettings", "GAPHyperparameters", "GAPPotential", "default_hyperparameters"]
