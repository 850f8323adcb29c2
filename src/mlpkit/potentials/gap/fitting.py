"""The solve of the sparse GP and the error summary of a fit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms
from scipy import linalg

from mlpkit.data.records import reference_results

if TYPE_CHECKING:
    from mlpkit.potentials.gap.potential import GAPPotential


def solve(
    phi: np.ndarray, y: np.ndarray, blocks: list[tuple[np.ndarray, float, bool]], jitter: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projected-process weights from noise-weighted rows, in float64, by QR (no normal equations).

    phi:     (n_obs, M) Σ^{-1/2}Φ; y: (n_obs,) Σ^{-1/2}y
    blocks:  per group of columns, in column order: (K_MM of its sparse points, prior δ in eV, whether it is a SOAP
             block whose Nyström factor is kept); K_MM + jitter·I = L Lᵀ
    Returns the weights (M,), R⁻¹ (M, M) with A⁻¹ = R⁻¹R⁻ᵀ from the QR of [Σ^{-1/2}Φ; Lᵀ/δ], and L⁻ᵀ of the
    SOAP blocks (M_soap, M_soap) with K_MM⁻¹ = L⁻ᵀL⁻¹.
    """
    m = phi.shape[1]
    m_soap = sum(len(k) for k, _, is_soap in blocks if is_soap)
    lt = np.zeros((m, m))
    nystrom = np.zeros((m_soap, m_soap))
    col = 0
    for kmm, delta, is_soap in blocks:
        k = len(kmm)
        if k == 0:  # an element seen only as lone atoms, a pair never within the cutoff: nothing to fit
            continue
        chol = linalg.cholesky(kmm + jitter * np.eye(k), lower=True)
        lt[col : col + k, col : col + k] = chol.T / delta
        if is_soap:
            nystrom[col : col + k, col : col + k] = linalg.solve_triangular(chol, np.eye(k), lower=True).T
        col += k
    q, r = np.linalg.qr(np.vstack([phi, lt]))
    w = linalg.solve_triangular(r, q.T @ np.concatenate([y, np.zeros(m)]))
    return w, linalg.solve_triangular(r, np.eye(m)), nystrom


def metrics(pot: GAPPotential, images: list[Atoms]) -> dict[str, float]:
    """``energy_mae``/``energy_rmse`` (eV/atom) and ``forces_mae``/``forces_rmse`` (eV/Å) of ``pot`` on labelled
    ``images`` (mean only), named as the epoch trainer names them."""
    energies, forces = reference_results(images)
    keep, pot.variance = pot.variance, False
    try:
        pred = pot.predict(images)
    finally:
        pot.variance = keep
    n = np.array([len(a) for a in images])
    de = (pred.energy - energies) / n
    df = np.concatenate(pred.forces) - np.concatenate(forces)
    return {
        "energy_mae": float(np.mean(np.abs(de))),
        "energy_rmse": float(np.sqrt(np.mean(de**2))),
        "forces_mae": float(np.mean(np.abs(df))),
        "forces_rmse": float(np.sqrt(np.mean(df**2))),
    }
