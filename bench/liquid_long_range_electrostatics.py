"""Is the missing physics long-range electrostatics? A local potential (cutoff r_c) cannot see the Coulomb energy
between charges farther apart than r_c. This estimates that part with fixed point charges (TIP3P's: O −0.834 e,
H +0.417 e) on labelled water boxes — the Ewald energy (tin-foil boundary) minus the bare Coulomb sum within
molecules and between molecules whose O-O distance is within r_c — and correlates it with the potential's energy
error per box, frame set by frame set.

    python bench/liquid_long_range_electrostatics.py MODEL FRAMES.extxyz [FRAMES2.extxyz ...] --cutoff 4.5

A strong negative correlation between the potential's error (E_MLP − E_ref) and the long-range part (the local
model misses an energy it should have added) points at electrostatics beyond the cutoff; none leaves it open
(fixed charges are a crude stand-in for the reference method's own charges and polarisation). Also printed: the
box dipole |M|² (e² Å², from the same charges), whose fluctuations give the dielectric constant.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

#: eV Å / e²: Coulomb's constant in ASE units
K_E = 14.399645
CHARGES = {8: -0.834, 1: 0.417}


def ewald_energy(positions: np.ndarray, charges: np.ndarray, cell: np.ndarray, alpha: float = 0.35,
                 r_cut: float | None = None, k_max: int = 8) -> float:  # fmt: skip
    """eV: Ewald sum (tin-foil boundary) of point ``charges`` (N,) e at ``positions`` (N, 3) Å in ``cell`` (3, 3)
    Å; ``alpha`` 1/Å splits real and reciprocal space (real-space sum to ``r_cut`` Å, default 3.2/alpha:
    erfc(3.2) = 6e-6)."""
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    r_cut = r_cut or 3.2 / alpha
    atoms = Atoms(positions=positions, cell=cell, pbc=True, numbers=np.ones(len(charges), dtype=int))
    i, j, d = neighbor_list("ijd", atoms, r_cut)
    real = 0.5 * np.sum(charges[i] * charges[j] * np.vectorize(math.erfc)(alpha * d) / d)
    volume = abs(np.linalg.det(cell))
    recip = 2 * np.pi * np.linalg.inv(cell).T  # rows: reciprocal vectors
    n = np.arange(-k_max, k_max + 1)
    grid = np.stack(np.meshgrid(n, n, n, indexing="ij"), -1).reshape(-1, 3)
    grid = grid[np.any(grid != 0, axis=1)]
    k = grid @ recip
    k2 = np.einsum("ij,ij->i", k, k)
    s = np.exp(1j * positions @ k.T).T @ charges  # structure factor per k
    rec = (2 * np.pi / volume) * np.sum(np.exp(-k2 / (4 * alpha**2)) / k2 * np.abs(s) ** 2)
    self_term = -alpha / math.sqrt(math.pi) * np.sum(charges**2)
    return K_E * float(real + rec + self_term)


def short_range_coulomb(positions: np.ndarray, charges: np.ndarray, cell: np.ndarray, mols: np.ndarray,
                        cutoff: float) -> float:  # fmt: skip
    """eV: the bare Coulomb energy within molecules and between molecules (rows of ``mols``, neutral groups) whose
    O-O distance is below ``cutoff`` Å (periodic images included). Whole molecules, not atoms, are cut: an
    atom-based cutoff cuts dipoles in half and swings by eV when one charge crosses it."""
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    oxygens = Atoms(positions=positions[mols[:, 0]], cell=cell, pbc=True)
    a, b, shift = neighbor_list("ijS", oxygens, cutoff)
    energy = 0.0
    for m in range(len(mols)):  # within each molecule: the three pairs
        for x in range(3):
            for y in range(x + 1, 3):
                p, q = mols[m, x], mols[m, y]
                energy += charges[p] * charges[q] / np.linalg.norm(positions[p] - positions[q])
    offset = shift @ cell  # (pairs, 3): image of molecule b
    for x in range(3):
        for y in range(3):
            p, q = mols[a, x], mols[b, y]
            d = np.linalg.norm(positions[q] + offset - positions[p], axis=1)
            energy += 0.5 * np.sum(charges[p] * charges[q] / d)
    return K_E * energy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="a saved potential directory")
    ap.add_argument("frames", type=Path, nargs="+", help="labelled water boxes (extxyz with energies)")
    ap.add_argument("--cutoff", type=float, default=4.5, help="the potential's cutoff (Å)")
    args = ap.parse_args()
    from liquid_force_components import molecules, whole_molecules
    from mlpkit.files import read_images
    from mlpkit.potentials.registry import load_potential

    calc = load_potential(args.model).calculator()
    print("| frames | n | E_MLP − E_ref (meV/atom) mean / std | long-range Coulomb (meV/atom) mean / std | "
          "corr(error, long-range) | box dipole ⟨M²⟩ (e² Å²) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    all_err, all_lr = [], []
    for path in args.frames:
        err, lr, m2 = [], [], []
        for frame in read_images(path):
            q = np.array([CHARGES[z] for z in frame.numbers])
            probe = frame.copy()
            probe.calc = calc
            n = len(frame)
            err.append(1000 * (probe.get_potential_energy() - frame.get_potential_energy()) / n)
            pos, cell = frame.positions, frame.cell.array
            mols = molecules(frame)
            lr.append(1000 * (ewald_energy(pos, q, cell) - short_range_coulomb(pos, q, cell, mols, args.cutoff)) / n)
            mu = (q[mols][..., None] * whole_molecules(frame, mols)).sum((0, 1))  # neutral: origin-free
            m2.append(float(mu @ mu))
        e, g = np.asarray(err), np.asarray(lr)
        all_err.append(e)
        all_lr.append(g)
        print(f"| {path.name} | {e.size} | {e.mean():+.2f} / {e.std():.2f} | {g.mean():+.2f} / {g.std():.2f} | "
              f"{np.corrcoef(e, g)[0, 1]:+.2f} | {np.mean(m2):.1f} |")  # fmt: skip
    if len(args.frames) > 1:
        e, g = np.concatenate(all_err), np.concatenate(all_lr)
        print(f"| all | {e.size} | {e.mean():+.2f} / {e.std():.2f} | {g.mean():+.2f} / {g.std():.2f} | "
              f"{np.corrcoef(e, g)[0, 1]:+.2f} | |")  # fmt: skip


if __name__ == "__main__":
    main()
