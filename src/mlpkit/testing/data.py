"""Small labelled data sets the shared checks train and test on, made by mlpkit's own tools (no files needed).

Water frames come from Langevin MD at 500 K driven and labelled by GFN2-xTB (tblite, a default dependency; about
2 ms per frame), so a third-party family can run :class:`mlpkit.testing.PotentialContract` anywhere.
"""

from __future__ import annotations

import functools

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator


@functools.lru_cache(maxsize=4)
def _water_frames(n: int, temperature: float, seed: int) -> tuple[Atoms, ...]:
    from mlpkit.labelers import make_labeler
    from mlpkit.sampling import md_snapshots

    labeler = make_labeler("gfn2")
    start = molecule("H2O", vacuum=5.0)
    frames = md_snapshots(
        start, labeler.calculator(), temperature=temperature, steps=5 * n, every=5, thermostat="langevin", seed=seed
    )
    out = []
    for atoms in frames:
        atoms.calc = labeler.calculator()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        atoms.info["method"] = labeler.method
        out.append(atoms)
    return tuple(out)


def labelled_water(n: int = 60, temperature: float = 500.0, seed: int = 0) -> list[Atoms]:
    """``n`` water configurations (5 Å vacuum, 5 fs apart) with GFN2-xTB energies (eV) and forces (eV/Å).

    Fresh copies on every call (the set itself is computed once per process), so callers may change them.
    """
    frames = []
    for atoms in _water_frames(int(n), float(temperature), int(seed)):
        copy = atoms.copy()
        copy.calc = SinglePointCalculator(copy, **atoms.calc.results)
        frames.append(copy)
    return frames


def water_cluster(n_molecules: int = 4, spacing: float = 2.9, seed: int = 0, periodic: bool = False) -> Atoms:
    """``n_molecules`` randomly oriented waters on a cubic grid (``spacing`` Å apart), rattled, open or periodic."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    m = int(np.ceil(n_molecules ** (1 / 3)))
    w = molecule("H2O")
    pos, symbols = [], []
    for k in range(n_molecules):
        ix, iy, iz = k // (m * m), (k // m) % m, k % m
        rot = Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix()
        pos.append(w.positions @ rot.T + (np.array([ix, iy, iz]) + 0.5) * spacing)
        symbols += w.get_chemical_symbols()
    atoms = Atoms(symbols, positions=np.concatenate(pos) + rng.normal(0, 0.05, (3 * n_molecules, 3)))
    if periodic:
        atoms.cell = np.diag([m * spacing] * 3) + rng.normal(0, 0.1, (3, 3))  # triclinic on purpose
        atoms.pbc = True
    return atoms
