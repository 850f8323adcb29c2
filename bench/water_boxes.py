"""Periodic liquid-water boxes for the MD speed and accuracy benchmarks (``mlpkit.data.boxes.molecular_box``).

A box of ``n**3`` molecules of the PBE/def2-SVP monomer at the liquid density (1.0 g/cm³ by default, 29.9 Å³ per
molecule): centres on a simple-cubic lattice, jittered by up to 0.15 Å, each molecule rotated at random (seeded) and
turned again while two atoms of different molecules are closer than ``min_distance`` (the closest intermolecular
contact is then a hydrogen bond, ~1.6-2 Å, as in liquid water). The neighbour count per atom, which sets the cost of
every model here, is that of the real liquid (~90 atoms within 6 Å).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from mlpkit.data.boxes import molecular_box

#: PBE/def2-SVP water monomer (r(O-H) in Å, H-O-H angle in degrees; see /work/shared/anchors.md)
R_OH = 0.9747
ANGLE_HOH = 102.04


def water_monomer() -> Atoms:
    """The PBE/def2-SVP water molecule (O, H, H; Å)."""
    x, z = R_OH * np.sin(np.radians(ANGLE_HOH) / 2), R_OH * np.cos(np.radians(ANGLE_HOH) / 2)
    return Atoms("OH2", positions=[[0.0, 0.0, 0.0], [x, 0.0, z], [-x, 0.0, z]])


def water_box(
    n_side: int, *, density: float = 1.0, seed: int = 0, jitter: float = 0.15, min_distance: float = 1.5
) -> Atoms:
    """Cubic periodic box of ``n_side**3`` water molecules (``3 n_side**3`` atoms).

    density:      g/cm³
    jitter:       Å, maximum displacement of each molecular centre from its lattice site
    min_distance: Å, smallest allowed distance between atoms of different molecules
    """
    return molecular_box(
        water_monomer(), n_side**3, density=density, seed=seed, jitter=jitter, min_distance=min_distance
    )


def n_side_for(n_atoms: int) -> int:
    """The lattice size whose box holds the number of atoms closest to ``n_atoms``."""
    return max(1, round((n_atoms / 3) ** (1 / 3)))
