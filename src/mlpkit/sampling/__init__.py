"""Candidate configurations for labelling: MD snapshots, random rattling and normal-mode sampling.

Every sampler takes a structure plus (where it needs forces) any ASE calculator or mlpkit labeler, is
seeded, never changes its input, and returns plain ``ase.Atoms`` whose ``info`` says where they came from
(``source``, ``temperature``, ``step``...). They carry no energies: labels come from the reference method.
"""

from mlpkit.sampling.driver import PotentialDriver, check_driver, make_driver
from mlpkit.sampling.md import equilibrate_box, md_snapshots
from mlpkit.sampling.normal_modes import harmonic_modes, normal_mode_sampling
from mlpkit.sampling.rattle import rattle

__all__ = [
    "PotentialDriver",
    "check_driver",
    "equilibrate_box",
    "harmonic_modes",
    "make_driver",
    "md_snapshots",
    "normal_mode_sampling",
    "rattle",
]
