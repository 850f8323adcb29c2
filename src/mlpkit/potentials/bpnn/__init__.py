"""The Behler-Parrinello family: atom-centred symmetry functions → one network per element → sum.

``potential`` (the :class:`BPNNPotential`: prediction, fit, save/load), ``network`` (the torch module and its
derivatives), ``md_graph`` (the neighbour list kept between MD steps), ``settings`` (typed hyperparameters).
"""

from mlpkit.potentials.bpnn.network import AtomicNetworks, energy_forces, kernel_energy_forces
from mlpkit.potentials.bpnn.potential import BPNNPotential
from mlpkit.potentials.bpnn.settings import BPNNHyperparameters, default_hyperparameters

__all__ = [
    "AtomicNetworks",
    "BPNNHyperparameters",
    "BPNNPotential",
    "default_hyperparameters",
    "energy_forces",
    "kernel_energy_forces",
]
