"""The extrapolation grade γ of a linear potential: a MaxVol active set of training environments.

For one element, the rows ``X`` (n_atoms, n) are the basis vectors ``B(R_i)`` of its training atoms (the
gradient of the atomic energy with respect to the coefficients, MLIP's per-neighbourhood selection). MaxVol
chooses the ``n`` rows ``A`` of (locally) maximal ``|det A|``; any environment ``x`` is then a combination
``c = x A⁻¹`` of the active set and ``γ = max_k |c_k|``: every training environment has ``γ ≤ 1`` (up to the
MaxVol tolerance), ``γ > 1`` means the new environment extends the volume, i.e. extrapolates (Podryabinkin &
Shapeev 2017). Thresholds used in practice: ``γ > 2`` worth labelling, ``γ > 10`` unreliable.

With fewer training atoms than basis functions (or a rank-deficient basis), ``A`` cannot be square: the rows
are first projected on the principal subspace of the standardised training rows (singular values above
:data:`RANK_TOLERANCE` of the largest), where the selection is done. The part of a new environment outside that
subspace is measured against the training atoms: ``γ_⊥ = |x - x P Pᵀ| / max_training |x_t - x_t P Pᵀ|``, and
the reported grade is ``max(γ_active, γ_⊥)`` (also ≤ 1 on the training atoms). Columns are standardised (RMS
over the training atoms) before the projection; with a square active set γ does not depend on that scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

#: singular values below this fraction of the largest define the discarded directions (numerical rank)
RANK_TOLERANCE = 1e-7
#: MaxVol stops when no coefficient exceeds 1 + this
MAXVOL_TOLERANCE = 1e-3


def maxvol(x: np.ndarray, tol: float = MAXVOL_TOLERANCE, max_iter: int = 10_000) -> np.ndarray:
    """Rows (r,) of ``x`` (N, r), N ≥ r, full column rank, spanning a submatrix of locally maximal volume.

    Start from the pivots of a column-pivoted QR of ``xᵀ``, then swap in the row with the largest coefficient
    while it exceeds ``1 + tol`` (rank-one updates of ``C = x A⁻¹``: O(N r) per swap).
    """
    n, r = x.shape
    if n < r:
        raise ValueError(f"maxvol needs at least as many rows as columns, got {x.shape}")
    _, _, piv = scipy.linalg.qr(x.T, mode="economic", pivoting=True)
    rows = np.array(piv[:r], dtype=np.int64)
    coeff = scipy.linalg.solve(x[rows].T, x.T).T  # C = x A⁻¹
    for _ in range(max_iter):
        i, j = np.unravel_index(np.argmax(np.abs(coeff)), coeff.shape)
        if abs(coeff[i, j]) <= 1 + tol:
            break
        col, row = coeff[:, j].copy(), coeff[i].copy()
        row[j] -= 1.0
        coeff -= np.outer(col, row / coeff[i, j])
        rows[j] = i
    return rows


@dataclass
class ActiveSet:
    """The active set of one element: γ(x) = max(max |((x / scale) P) A⁻¹|, residual grade).

    scale:       (n,) column scale of the basis (RMS over the training atoms)
    projection:  (n, r) orthonormal basis of the principal subspace
    inverse:     (r, r) A⁻¹ of the selected rows in that subspace
    residual:    the largest out-of-subspace norm among the training atoms (0: none)
    rows:        (r,) indices of the selected training atoms (in the order the fit saw them)
    """

    scale: np.ndarray
    projection: np.ndarray
    inverse: np.ndarray
    residual: float
    rows: np.ndarray

    @classmethod
    def select(cls, x: np.ndarray) -> ActiveSet:
        """MaxVol active set of the training rows ``x`` (n_atoms, n_basis)."""
        x = np.asarray(x, dtype=np.float64)
        scale = np.sqrt(np.mean(x * x, axis=0))
        scale = np.where(scale > 1e-300, scale, 1.0)
        xs = x / scale
        _, sv, vt = np.linalg.svd(xs, full_matrices=False)
        rank = int(np.sum(sv > RANK_TOLERANCE * sv[0])) if len(sv) and sv[0] > 0 else 0
        if rank == 0:
            raise ValueError("the training environments of this element have no nonzero basis values")
        projection = vt[:rank].T
        reduced = xs @ projection
        rows = maxvol(reduced)
        inverse = np.linalg.inv(reduced[rows])
        out = xs - reduced @ projection.T
        residual = float(np.linalg.norm(out, axis=1).max()) if rank < x.shape[1] else 0.0
        return cls(scale, projection, inverse, residual, rows)

    def grade(self, x: np.ndarray) -> np.ndarray:
        """γ (N,) of basis rows ``x`` (N, n_basis)."""
        xs = np.asarray(x, dtype=np.float64) / self.scale
        reduced = xs @ self.projection
        gamma = np.abs(reduced @ self.inverse).max(axis=1) if len(xs) else np.zeros(0)
        if self.residual > 0:
            out = np.linalg.norm(xs - reduced @ self.projection.T, axis=1) / self.residual
            gamma = np.maximum(gamma, out)
        return gamma

    def tensors(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}.scale": self.scale,
            f"{prefix}.projection": self.projection,
            f"{prefix}.inverse": self.inverse,
            f"{prefix}.residual": np.array([self.residual]),
            f"{prefix}.rows": self.rows,
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], prefix: str) -> ActiveSet:
        return cls(
            np.asarray(tensors[f"{prefix}.scale"], dtype=np.float64),
            np.asarray(tensors[f"{prefix}.projection"], dtype=np.float64),
            np.asarray(tensors[f"{prefix}.inverse"], dtype=np.float64),
            float(np.asarray(tensors[f"{prefix}.residual"])[0]),
            np.asarray(tensors[f"{prefix}.rows"], dtype=np.int64),
        )
