"""Compiled (numba) CPU kernels for the symmetry functions and their forces: the prediction and MD hot path.

The torch implementation in :mod:`mlpkit.descriptors.symmetry` runs dozens of element-wise passes over
(pairs × basis) tensors per step. Here each pair is visited once in the forward pass and once in the backward
pass, with everything for that pair in registers and L1:

* **Tabulated radial parts.** The radial basis ``R_k(r) = exp(-η (r - μ_k)²) f_c(r)`` (and the angular one on
  its own cutoff) is a fixed function of ``r``; it is tabulated once per model (:mod:`mlpkit.descriptors.tables`)
  with its exact derivative at
  knots ``r_m = m h`` and evaluated by cubic Hermite interpolation: one table row pair and 8 fused
  multiply-adds per basis function instead of ``cos``, ``sin`` and ``exp`` per pair (the same idea as DeePMD's
  model compression and LAMMPS's tabulated pair styles). The interpolant is C¹ (continuous forces), it is the
  function whose exact derivative the forces are (energy conservation and finite-difference consistency are
  exact), and ``h`` is halved until it is within :data:`TABLE_TOLERANCE` of the analytic basis (checked on
  the midpoints and quarter points of every interval: about 1e-10 at the default settings, far below the
  float32 rounding of the networks).
* **Angular moments** ``M[i, s, k, c] = Σ_j A_k(r_ij) w_c mono_c(u_ij)`` are accumulated pair by pair; the
  backward runs reverse mode through the monomial recursion ``mono_c = mono_parent(c) · u_dir(c)``.
* **Forces and virial** ``F = -dE/dx``, ``W = Σ_p v_p ⊗ dE/dv_p`` are accumulated in the backward pass.

This module holds the per-pair building blocks; the pair passes themselves are the block kernels of
:mod:`mlpkit.descriptors.atom_kernels`, run on several threads by :mod:`mlpkit.descriptors.kernel_threads`.
``tests/test_kernels.py`` checks features, forces and virial against the torch implementation and against
finite differences. Compiled once per machine and cached next to this file (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mlpkit.descriptors import kernel_cache

kernel_cache.install()  # before any cache=True kernel: one cache stamp over all kernel sources

#: LLVM fast-math flags: FMA contraction and reassociation of sums (vectorised reductions). No "nnan"/"ninf",
#: so NaN and inf still propagate: a broken input stays visible.
_FASTMATH = {"contract", "reassoc", "nsz", "arcp"}


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _interval(r: float, h: float, n_knots: int) -> tuple[int, float]:
    """Knot interval ``m`` of ``r`` and the position ``u`` in [0, 1) inside it."""
    t = r / h
    m = min(int(t), n_knots - 2)
    return m, t - m


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _value_weights(u: float, h: float) -> tuple[float, float, float, float]:
    """Cubic Hermite weights of (f_m, f'_m, f_m+1, f'_m+1) for the value at ``u``."""
    v = 1.0 - u
    return (1.0 + 2.0 * u) * v * v, h * u * v * v, u * u * (3.0 - 2.0 * u), h * u * u * (u - 1.0)


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _derivative_weights(u: float, h: float) -> tuple[float, float, float]:
    """Weights of (f_m - f_m+1, f'_m, f'_m+1) for the r-derivative of the interpolant at ``u``."""
    return 6.0 * u * (u - 1.0) / h, (3.0 * u - 1.0) * (u - 1.0), u * (3.0 * u - 2.0)


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _lookup_value(r: float, h: float, table, value) -> None:
    """Cubic Hermite interpolation of every basis function at ``r`` (< last knot): the values."""
    m, u = _interval(r, h, table.shape[0])
    c0, c1, c2, c3 = _value_weights(u, h)
    lo, hi = table[m], table[m + 1]
    for k in range(value.shape[0]):
        value[k] = c0 * lo[0, k] + c1 * lo[1, k] + c2 * hi[0, k] + c3 * hi[1, k]


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _lookup_derivative(r: float, h: float, table, deriv) -> None:
    """The r-derivative of the interpolant of :func:`_lookup_value` (exactly, not a table of derivatives)."""
    m, u = _interval(r, h, table.shape[0])
    e0, e1, e3 = _derivative_weights(u, h)
    lo, hi = table[m], table[m + 1]
    for k in range(deriv.shape[0]):
        deriv[k] = e0 * (lo[0, k] - hi[0, k]) + e1 * lo[1, k] + e3 * hi[1, k]


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _lookup(r: float, h: float, table, value, deriv) -> None:
    """:func:`_lookup_value` and :func:`_lookup_derivative` in one pass over the two table rows (faster)."""
    m, u = _interval(r, h, table.shape[0])
    c0, c1, c2, c3 = _value_weights(u, h)
    e0, e1, e3 = _derivative_weights(u, h)
    lo, hi = table[m], table[m + 1]
    for k in range(value.shape[0]):
        f0, d0, f1, d1 = lo[0, k], lo[1, k], hi[0, k], hi[1, k]
        value[k] = c0 * f0 + c1 * d0 + c2 * f1 + c3 * d1
        deriv[k] = e0 * (f0 - f1) + e1 * d0 + e3 * d1


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _monomials(u, parent, direction, mono) -> None:
    """mono_c(u) for unit vector ``u`` (3,), built up the recursion mono_c = mono_parent(c) · u_dir(c)."""
    mono[0] = 1.0
    for c in range(1, mono.shape[0]):
        mono[c] = mono[parent[c]] * u[direction[c]]


#: monomials of the default angular order 3 (1 + 3 + 6 + 10): the kernels spell out their derivative sums
#: (:func:`_monomial_gradient3`) instead of gathering through ``dindex``/``dcoef``
C_ORDER3 = 20


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _monomial_gradient3(adj, mono) -> tuple[float, float, float]:
    """``Σ_c adj[c] ∂mono_c/∂u_d`` (d = x, y, z) for angular order 3, the order of
    :func:`mlpkit.descriptors.symmetry._monomials`: ∂(x^a y^b z^c)/∂x = a x^(a-1) y^b z^c, so every term is
    a degree ≤ 2 monomial times the adjoint of its child along d (``tests/test_kernels.py`` checks it against
    the table-driven sum). Unrolled: the generic sum costs 57 index loads per pair."""
    dx = (adj[1] * mono[0] + 2.0 * adj[4] * mono[1] + adj[5] * mono[2] + adj[6] * mono[3]
          + 3.0 * adj[10] * mono[4] + 2.0 * adj[11] * mono[5] + 2.0 * adj[12] * mono[6] + adj[13] * mono[7]
          + adj[14] * mono[8] + adj[15] * mono[9])  # fmt: skip
    dy = (adj[2] * mono[0] + adj[5] * mono[1] + 2.0 * adj[7] * mono[2] + adj[8] * mono[3] + adj[11] * mono[4]
          + 2.0 * adj[13] * mono[5] + adj[14] * mono[6] + 3.0 * adj[16] * mono[7] + 2.0 * adj[17] * mono[8]
          + adj[18] * mono[9])  # fmt: skip
    dz = (adj[3] * mono[0] + adj[6] * mono[1] + adj[8] * mono[2] + 2.0 * adj[9] * mono[3] + adj[12] * mono[4]
          + adj[14] * mono[5] + 2.0 * adj[15] * mono[6] + adj[17] * mono[7] + 2.0 * adj[18] * mono[8]
          + 3.0 * adj[19] * mono[9])  # fmt: skip
    return dx, dy, dz


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _monomial_gradient(adj, mono, dindex, dcoef) -> tuple[float, float, float]:
    """``Σ_c adj[c] ∂mono_c/∂u_d`` for any order: ∂mono_c/∂u_d = dcoef[c, d] mono[dindex[c, d]]."""
    if mono.shape[0] == C_ORDER3:
        return _monomial_gradient3(adj, mono)
    dx = dy = dz = 0.0
    for c in range(1, mono.shape[0]):
        dx += adj[c] * dcoef[c, 0] * mono[dindex[c, 0]]
        dy += adj[c] * dcoef[c, 1] * mono[dindex[c, 1]]
        dz += adj[c] * dcoef[c, 2] * mono[dindex[c, 2]]
    return dx, dy, dz


@njit(cache=True, fastmath=_FASTMATH)
def pair_vectors(positions, i, j, shifts, cell):
    """Pair vectors (P, 3) Å: ``positions[j] - positions[i] + shifts @ cell`` (shifts integer (P, 3))."""
    out = np.empty((i.shape[0], 3))
    for p in range(i.shape[0]):
        a, b = i[p], j[p]
        s0, s1, s2 = shifts[p, 0], shifts[p, 1], shifts[p, 2]
        for d in range(3):
            out[p, d] = positions[b, d] - positions[a, d] + s0 * cell[0, d] + s1 * cell[1, d] + s2 * cell[2, d]
    return out
