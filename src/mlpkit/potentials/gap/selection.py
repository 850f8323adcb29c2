"""Batch selection with the GP's own variance: pick, pretend it is labelled, pick again.

A GP's posterior covariance does not depend on the labels, only on where they are. So a batch can be chosen
greedily: take the candidate with the largest predicted force σ (max over atoms of |σ_F|, eV/Å), add its
energy and force rows to the posterior as if labelled (with the fit's noise), recompute every other candidate's σ,
and repeat. Candidates that resemble one already picked lose their σ, so a batch does not spend labels on near
copies (a plain top-k of an MD trajectory picks consecutive frames).

With the posterior factor ``P`` (``A⁻¹ = P Pᵀ``) and the picked frame's noise-scaled rows ``U`` (q, M):
``A'⁻¹ = P (I + PᵀUᵀUP)⁻¹ Pᵀ``, so ``P' = P C⁻ᵀ`` with ``I + (UP)ᵀ(UP) = C Cᵀ``: one M x M Cholesky per pick.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms
from scipy import linalg

from mlpkit.errors import InputError
from mlpkit.potentials.gap.settings import BATCH_ATOMS

if TYPE_CHECKING:
    from mlpkit.potentials.gap.potential import GAPPotential


def candidate_rows(pot: GAPPotential, images: Sequence[Atoms]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise-scaled observation rows of every candidate as if it were labelled, (n_rows, M): per frame one energy
    row (÷ energy_sigma·√N) then its 3N force rows (÷ force_sigma); the frame of each row (n_rows,); and the global
    atom index of each row (-1 for energy rows), atoms numbered across all candidates."""
    fs = pot.metadata.get("fit_settings", {})
    sigma_e = float(fs.get("energy_sigma", 5e-4))
    sigma_f = float(fs.get("force_sigma", 5e-3))
    m = pot.posterior_factor.shape[0]
    rows, frame, atom = [], [], []
    first_atom = 0
    for start, stop in pot._batches(list(images), BATCH_ATOMS):
        part = list(images[start:stop])
        sizes = np.array([len(a) for a in part])
        offset = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        r = pot.rows(part, pot.descriptor.compute(part, gradients=True))
        for k, (n, o) in enumerate(zip(sizes, offset, strict=True)):
            rows.append(r["energy"][k : k + 1] / (sigma_e * np.sqrt(n)))
            rows.append(r["forces"][o : o + n].reshape(3 * n, m) / sigma_f)
            frame.append(np.full(1 + 3 * n, start + k))
            atom.append(np.r_[-1, first_atom + o + np.repeat(np.arange(n), 3)])
        first_atom += int(sizes.sum())
    return np.concatenate(rows), np.concatenate(frame), np.concatenate(atom)


def greedy_variance_selection(pot: GAPPotential, images: Sequence[Atoms], k: int) -> list[int]:
    """Indices of ``k`` configurations of ``images`` picked one at a time by the largest max-atomic force σ, each
    pick updating the posterior as if it were labelled (see module docstring). Deterministic. Holds every
    candidate's rows at once: (frames + 3·atoms) x M doubles (450 water frames at M = 150: 5 MB)."""
    if not pot.fitted:
        raise InputError("selection needs a fitted gap potential")
    images = list(images)
    pot.check_species(images)
    k = min(int(k), len(images))
    if k <= 0:
        return []
    rows, frame, atom = candidate_rows(pot, images)
    force = atom >= 0
    force_rows, force_atom = rows[force], atom[force]
    atom_frame = np.zeros(int(force_atom.max()) + 1, dtype=int)
    atom_frame[force_atom] = frame[force]
    sigma_f = float(pot.metadata.get("fit_settings", {}).get("force_sigma", 5e-3))
    factor = pot.posterior_factor.copy()
    m = factor.shape[0]
    chosen: list[int] = []
    for _ in range(k):
        var = np.sum((force_rows @ factor) ** 2, axis=1) * sigma_f**2  # eV²/Å² (rows are noise-scaled)
        per_atom = np.sqrt(np.bincount(force_atom, weights=var))  # |σ_F| of each atom
        score = np.full(len(images), -np.inf)
        np.maximum.at(score, atom_frame, per_atom)
        score[chosen] = -np.inf
        pick = int(np.argmax(score))
        chosen.append(pick)
        u = rows[frame == pick] @ factor  # (q, M)
        c = linalg.cholesky(np.eye(m) + u.T @ u, lower=True)
        factor = linalg.solve_triangular(c, factor.T, lower=True).T  # P C⁻ᵀ
    return chosen
