"""Periodic liquid-water boxes for the MD speed benchmark.

A box of ``n**3`` molecules sits on a simple-cubic lattice whose spacing gives the liquid density
(1.0 g/cm³ by default, 29.9 Å³ per molecule), each molecule rotated at random (seeded) and its centre
jittered. Orientations that put two atoms of different molecules closer than ``min_distance`` are drawn
again, so no box holds an unphysical overlap (the closest intermolecular contact is then a hydrogen bond,
~1.6-2 Å, as in liquid water). The neighbour count per atom, which sets the cost of every model here, is
that of the real liquid (~90 atoms within 6 Å).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from scipy.spatial.transform import Rotation
from vesin import NeighborList

#: PBE/def2-SVP water monomer (r(O-H) in Å, H-O-H angle in degrees; see /work/shared/anchors.md)
R_OH = 0.9747
ANGLE_HOH = 102.04
#: g/mol
M_WATER = 18.01528
AVOGADRO = 6.02214076e23


def water_monomer() -> np.ndarray:
    """(3, 3) Å: O, H, H positions with the centre of mass at the origin."""
    x, z = R_OH * np.sin(np.radians(ANGLE_HOH) / 2), R_OH * np.cos(np.radians(ANGLE_HOH) / 2)
    pos = np.array([[0.0, 0.0, 0.0], [x, 0.0, z], [-x, 0.0, z]])
    masses = np.array([15.999, 1.008, 1.008])
    return pos - masses @ pos / masses.sum()


def water_box(
    n_side: int, *, density: float = 1.0, seed: int = 0, jitter: float = 0.15, min_distance: float = 1.5
) -> Atoms:
    """Cubic periodic box of ``n_side**3`` water molecules (``3 n_side**3`` atoms).

    density:      g/cm³
    jitter:       Å, maximum displacement of each molecular centre from its lattice site
    min_distance: Å, smallest allowed distance between atoms of different molecules
    """
    rng = np.random.default_rng(seed)
    n_mol = n_side**3
    volume_per_molecule = M_WATER / AVOGADRO / density * 1e24  # Å³
    spacing = volume_per_molecule ** (1 / 3)
    length = spacing * n_side
    grid = np.stack(np.meshgrid(*(np.arange(n_side),) * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    centres = (grid + 0.5) * spacing + rng.uniform(-jitter, jitter, size=(n_mol, 3))
    monomer = water_monomer()
    rotations = Rotation.random(n_mol, random_state=rng).as_matrix()  # (n_mol, 3, 3)
    molecule = np.repeat(np.arange(n_mol), 3)
    nl = NeighborList(cutoff=min_distance, full_list=False)
    box = np.eye(3) * length
    for _ in range(200):
        positions = (centres[:, None, :] + np.einsum("mij,aj->mai", rotations, monomer)).reshape(-1, 3)
        i, j = nl.compute(positions, box, periodic=True, quantities="ij")
        clash = molecule[i] != molecule[j]
        if not clash.any():
            break
        # redraw the orientation of one molecule of each clashing pair (vectorised, not per pair)
        bad = np.unique(molecule[i[clash]])
        rotations[bad] = Rotation.random(len(bad), random_state=rng).as_matrix()
    else:
        raise RuntimeError(f"could not place {n_mol} molecules without overlaps")
    atoms = Atoms("OH2" * n_mol, positions=positions, cell=box, pbc=True)
    atoms.wrap()
    return atoms


def n_side_for(n_atoms: int) -> int:
    """The lattice size whose box holds the number of atoms closest to ``n_atoms``."""
    return max(1, round((n_atoms / 3) ** (1 / 3)))
