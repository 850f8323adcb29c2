"""The MACE family: mace-torch's ScaleShiftMACE built from typed hyperparameters and trained by mlpkit.

``potential`` (:class:`MACEPotential`: fit, predict, save/load, import of a trusted MACE ``.model`` file),
``model`` (building the network and its graphs), ``settings`` (typed hyperparameters and fit settings),
``foreign`` (conversion of pickled MACE models, only when trusted).
"""

from mlpkit.potentials.mace.potential import MACEPotential, average_neighbors
from mlpkit.potentials.mace.settings import MACEFitSettings, MACEHyperparameters

__all__ = ["MACEFitSettings", "MACEHyperparameters", "MACEPotential", "average_neighbors"]
