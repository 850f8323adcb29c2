"""The GP's kernel rows: energies, forces and virials as linear functionals of the local-energy GP.

The local energy of atom i of element s is a GP with covariance ``δ² k(p̂_i, p̂_j)`` between atoms of the same
element (0 between elements), ``k(p̂, p̂') = (p̂·p̂')^ζ`` on unit-norm power spectra. In the sparse (projected-
process / subset-of-regressors) form the local energy is ``ε_i = Σ_m k(p̂_i, s_m) w_m`` over the sparse points
``s_m`` of element s, so every observation is a row ``φ`` times the weights ``w``:

* total energy:   ``φ_E = Σ_i k(p̂_i, S)``
* force on atom a: ``φ_{F_a} = -Σ_i ζ (p̂_i·S)^{ζ-1} ⊙ (dp̂_i/dr_a · Sᵀ)``   (3, M)
* dE/dε (virial):  ``φ_ε  =  Σ_i ζ (p̂_i·S)^{ζ-1} ⊙ (dp̂_i/dε · Sᵀ)``     (3, 3, M)

Columns are the sparse points of all elements, element after element. :func:`design_rows` builds the full rows
(for fitting and the predictive variance); :func:`contracted` contracts with the weights first (energies, forces,
virials only; the per-MD-step path: no (g, 3, M) array).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse as sp

from mlpkit.potentials.gap.soap import SpeciesBlock, project


def _scatter(index: np.ndarray, n: int) -> sp.csr_matrix:
    """(n, len(index)) 0/1 matrix summing rows into ``index`` (a vectorised scatter-add)."""
    m = len(index)
    return sp.csr_matrix((np.ones(m), (index, np.arange(m))), shape=(n, m))


def kernel(x: np.ndarray, y: np.ndarray, zeta: int) -> np.ndarray:
    """Polynomial dot-product kernel (x·y)^ζ of unit-norm rows: (n, D), (m, D) → (n, m)."""
    return (x @ y.T) ** zeta


def design_rows(
    parts: Sequence[dict[int, SpeciesBlock]],
    sparse: Sequence[np.ndarray],
    zeta: int,
    n_systems: int,
    atom_offset: np.ndarray,
    n_atoms: int,
    *,
    forces: bool = True,
    strain: bool = False,
) -> dict[str, np.ndarray]:
    """Full kernel rows of a batch of structures.

    parts:        descriptors per element index, in parts that add up (:meth:`SoapDescriptor.compute`)
    sparse:       sparse points per element index, (M_s, D) unit-norm
    atom_offset:  (n_systems,) index of each structure's first atom in the batch's atom list
    Returns ``energy`` (n_systems, M), ``local`` (n_atoms, M) per-atom rows (atom order of the batch),
    ``forces`` (n_atoms, 3, M) if asked, ``virial`` (n_systems, 3, 3, M) (dE/dε) if ``strain``.
    """
    cols = np.cumsum([0, *[len(s) for s in sparse]])
    m_total = int(cols[-1])
    out = {"energy": np.zeros((n_systems, m_total)), "local": np.zeros((n_atoms, m_total))}
    if forces:
        out["forces"] = np.zeros((n_atoms, 3, m_total))
    if strain:
        out["virial"] = np.zeros((n_systems, 3, 3, m_total))
    for part in parts:
        for idx, b in part.items():
            s = sparse[idx]
            if len(s) == 0:
                continue
            lo, hi = cols[idx], cols[idx + 1]
            x = b.values @ s.T  # (n, M_s)
            k = x**zeta
            out["local"][atom_offset[b.system] + b.atom, lo:hi] = k
            out["energy"][:, lo:hi] += _scatter(b.system, n_systems) @ k
            c = zeta * x ** (zeta - 1)
            if forces and len(b.grad_sample):
                gs, g = b.grad_sample, len(b.grad_sample)
                rows = (b.grad.reshape(g * 3, -1) @ s.T).reshape(g, 3, -1)  # dp·s_m
                along = np.einsum("gcd,gd->gc", b.grad, b.values[gs])  # dp·p̂
                # ζx^{ζ-1} dp̂·s_m = ζx^{ζ-1} (dp·s_m - (dp·p̂) x_m) / |p|, in place (no (g, 3, M) temporaries)
                scale = (c / b.norm[:, None])[gs]
                shift = scale * x[gs]
                rows *= scale[:, None, :]
                for comp in range(3):
                    rows[:, comp, :] -= along[:, comp, None] * shift
                moved = atom_offset[b.system[gs]] + b.grad_atom
                out["forces"][:, :, lo:hi] -= (_scatter(moved, n_atoms) @ rows.reshape(g, -1)).reshape(n_atoms, 3, -1)
            if strain:
                n = len(b.values)
                raw = (b.strain.reshape(n * 9, -1) @ s.T).reshape(n, 9, -1)
                along = np.einsum("nkd,nd->nk", b.strain, b.values)
                rows = project(raw, along[:, :, None], x[:, None, :], b.norm[:, None, None]) * c[:, None, :]
                out["virial"][:, :, :, lo:hi] += (_scatter(b.system, n_systems) @ rows.reshape(n, -1)).reshape(
                    n_systems, 3, 3, -1
                )
    return out


def contracted(
    parts: Sequence[dict[int, SpeciesBlock]],
    sparse: Sequence[np.ndarray],
    weights: Sequence[np.ndarray],
    zeta: int,
    n_systems: int,
    atom_offset: np.ndarray,
    n_atoms: int,
    *,
    strain: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Energies (n_systems,) eV, forces (n_atoms, 3) eV/Å and dE/dε (n_systems, 3, 3) eV (or None), with the
    weights contracted first: ``u_i = ∂ε_i/∂p̂_i = (ζ x^{ζ-1} ⊙ w) S`` and ``dε_i = dp·(u - p̂(p̂·u))/|p|``, one pass
    over the (g, 3, D) gradients instead of a (g, 3, M) array."""
    energy = np.zeros(n_systems)
    forces = np.zeros((n_atoms, 3))
    virial = np.zeros((n_systems, 3, 3)) if strain else None
    for part in parts:
        for idx, b in part.items():
            s, w = sparse[idx], weights[idx]
            if len(s) == 0:
                continue
            x = b.values @ s.T
            energy += np.bincount(b.system, weights=x**zeta @ w, minlength=n_systems)
            u = (zeta * x ** (zeta - 1) * w) @ s  # (n, D)
            v = (u - b.values * np.sum(b.values * u, axis=1, keepdims=True)) / b.norm[:, None]
            if b.grad is not None and len(b.grad_sample):
                per_entry = np.einsum("gcd,gd->gc", b.grad, v[b.grad_sample])
                moved = atom_offset[b.system[b.grad_sample]] + b.grad_atom
                forces -= _scatter(moved, n_atoms) @ per_entry
            if strain:
                per_atom = np.einsum("nkd,nd->nk", b.strain, v)
                virial += (_scatter(b.system, n_systems) @ per_atom).reshape(n_systems, 3, 3)
    return energy, forces, virial


def farthest_points(x: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` rows of ``x`` (unit-norm, (N, D)) by farthest-point sampling, starting from the row
    farthest from the mean (deterministic). Distances are Euclidean on the unit sphere."""
    n = min(n, len(x))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    chosen = [int(np.argmax(np.linalg.norm(x - x.mean(0), axis=1)))]
    d2 = np.sum((x - x[chosen[0]]) ** 2, axis=1)
    for _ in range(n - 1):
        nxt = int(np.argmax(d2))
        if d2[nxt] <= 1e-20:  # the rest are duplicates of chosen points: they would make K_MM singular
            break
        chosen.append(nxt)
        d2 = np.minimum(d2, np.sum((x - x[nxt]) ** 2, axis=1))
    return np.array(chosen, dtype=np.int64)


def cur_points(x: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` rows of ``x`` ((N, D)) by CUR leverage: the rows with the largest squared norm of their
    components on the top-``n`` left singular vectors (one SVD; deterministic)."""
    n = min(n, len(x))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    u, sv, _ = np.linalg.svd(x, full_matrices=False)
    keep = min(n, int(np.sum(sv > 1e-10 * sv[0])))
    leverage = np.sum(u[:, :keep] ** 2, axis=1)
    order = np.argsort(-leverage, kind="stable")
    return np.sort(order[:n])
