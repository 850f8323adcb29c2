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

``tests/test_kernels.py`` checks features, forces and virial against the torch implementation and against
finite differences. Single-threaded; compiled once per machine and cached next to this file (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

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


@njit(cache=True, fastmath=_FASTMATH)
def symmetry_features(vectors, centers, neighbors, species, half, G, M, floats, ints, parent, direction, degree,
                      weight, parity, pair_a, pair_b, dindex, dcoef, table_radial, table_angular):  # fmt: skip
    """Fill features G (n_atoms, F) and angular moments M (n_atoms, S, K, C) (M: for the backward); float64, or
    float32 arrays for float32 models (per-pair arithmetic stays float64).

    vectors (P, 3) Å: image of ``neighbors[p]`` minus ``centers[p]``; pairs at or beyond the cutoff are skipped
    (Verlet lists with a skin). ``half``: every pair counts for both of its atoms. ``G`` and ``M`` are
    overwritten (callers reuse them between steps: fresh arrays of this size cost page faults every step).
    """
    rc, rca, h_r, h_a = floats[0], floats[1], floats[2], floats[3]
    S, nr, K, L = ints[0], ints[1], ints[2], ints[3]
    C = parent.shape[0]
    n_pairs = pair_a.shape[0]
    P = vectors.shape[0]
    n_atoms = G.shape[0]
    G[:, : S * nr] = 0.0  # the angular columns are assigned below, not accumulated
    M[:] = 0.0
    Kb = max(K, 1)
    g = np.empty(nr)
    ga = np.empty(Kb)
    y = np.empty(C)
    mono = np.empty(C)
    u = np.empty(3)
    KC = K * C
    outer = np.empty(max(KC, 1))
    parity_kc = _parity_kc(parity, K)
    Mf = M.reshape((n_atoms, S, M.shape[2] * C))
    rc2 = rc * rc
    for p in range(P):
        vx, vy, vz = vectors[p, 0], vectors[p, 1], vectors[p, 2]
        r2 = vx * vx + vy * vy + vz * vz
        if r2 >= rc2:
            continue
        r = math.sqrt(r2)
        i, j = centers[p], neighbors[p]
        si, sj = species[i], species[j]
        _lookup_value(r, h_r, table_radial, g)
        gi = G[i, sj * nr : (sj + 1) * nr]
        for k in range(nr):
            gi[k] += g[k]
        if half:
            gj = G[j, si * nr : (si + 1) * nr]
            for k in range(nr):
                gj[k] += g[k]
        if K == 0 or r >= rca:
            continue
        _lookup_value(r, h_a, table_angular, ga)
        inv_r = 1.0 / r
        u[0], u[1], u[2] = vx * inv_r, vy * inv_r, vz * inv_r
        _monomials(u, parent, direction, mono)
        for c in range(C):
            y[c] = mono[c] * weight[c]
        for k in range(K):  # the pair's outer product, then one contiguous K*C-long update per atom
            for c in range(C):
                outer[k * C + c] = ga[k] * y[c]
        mi = Mf[i, sj]
        for x in range(KC):
            mi[x] += outer[x]
        if half:
            mj = Mf[j, si]
            for x in range(KC):
                mj[x] += outer[x] * parity_kc[x]
    if K > 0:
        # monomials are ordered by degree: degree n owns columns start[n]:start[n+1]
        start = np.zeros(L + 2, dtype=np.int64)
        for c in range(C):
            start[degree[c] + 1] = c + 1
        base = S * nr
        for i in range(n_atoms):
            for q in range(n_pairs):
                ma, mb = M[i, pair_a[q]], M[i, pair_b[q]]
                for k in range(K):
                    col = base + (q * K + k) * (L + 1)
                    for n in range(L + 1):
                        acc = 0.0
                        for c in range(start[n], start[n + 1]):
                            acc += ma[k, c] * mb[k, c]
                        G[i, col + n] = acc


@njit(cache=True, fastmath=_FASTMATH)
def symmetry_forces(vectors, centers, neighbors, species, image, half, grad_features, M, forces, virial, floats,
                    ints, parent, direction, degree, weight, parity, pair_a, pair_b, dindex, dcoef, table_radial,
                    table_angular):  # fmt: skip
    """Fill forces (n_atoms, 3) = -dE/dx and virial (n_images, 3, 3) = Σ_p v_p ⊗ dE/dv_p from dE/dG (n_atoms, F).

    ``M`` comes from :func:`symmetry_features` on the same pairs and is **overwritten** with dE/dM (row by row:
    one array less to stream through memory at large N). ``image`` (n_atoms,) is the configuration of each atom.
    The radial parts are looked up again (cheaper than keeping them: the tables stay in cache).
    """
    rc, rca, h_r, h_a = floats[0], floats[1], floats[2], floats[3]
    S, nr, K, L = ints[0], ints[1], ints[2], ints[3]
    C = parent.shape[0]
    n_pairs = pair_a.shape[0]
    n_atoms = species.shape[0]
    # dE/dM from G5[i, (a, b), k, n] = Σ_{c of degree n} M[i, a, k, c] M[i, b, k, c]; weights folded in
    forces[:] = 0.0
    virial[:] = 0.0
    gm = M  # dE/dM replaces M row by row
    if K > 0:
        base = S * nr
        row = np.empty((S, K, C))
        for i in range(n_atoms):
            row[:] = 0.0
            for q in range(n_pairs):
                sa, sb = pair_a[q], pair_b[q]
                ma, mb = M[i, sa], M[i, sb]
                for k in range(K):
                    col = base + (q * K + k) * (L + 1)
                    for c in range(C):
                        w = grad_features[i, col + degree[c]] * weight[c]
                        row[sa, k, c] += w * mb[k, c]
                        row[sb, k, c] += w * ma[k, c]
            gm[i] = row
    Kb = max(K, 1)
    KC = K * C
    gmf = gm.reshape((n_atoms, S, gm.shape[2] * C))
    parity_kc = _parity_kc(parity, K)
    adj = np.empty(C)
    gmp = np.empty(max(KC, 1))
    u = np.empty(3)
    drow = np.empty(nr)
    ga = np.empty(Kb)
    dga = np.empty(Kb)
    mono = np.empty(C)
    w = np.zeros(9)
    b = -1
    rc2 = rc * rc
    for p in range(vectors.shape[0]):
        vx, vy, vz = vectors[p, 0], vectors[p, 1], vectors[p, 2]
        r2 = vx * vx + vy * vy + vz * vz
        if r2 >= rc2:
            continue
        r = math.sqrt(r2)
        inv_r = 1.0 / r
        ux, uy, uz = vx * inv_r, vy * inv_r, vz * inv_r
        i, j = centers[p], neighbors[p]
        si, sj = species[i], species[j]
        _lookup_derivative(r, h_r, table_radial, drow)
        dedr = 0.0
        oi, oj = sj * nr, si * nr
        if half:
            for k in range(nr):
                dedr += (grad_features[i, oi + k] + grad_features[j, oj + k]) * drow[k]
        else:
            for k in range(nr):
                dedr += grad_features[i, oi + k] * drow[k]
        dux = duy = duz = 0.0
        if K > 0 and r < rca:
            _lookup(r, h_a, table_angular, ga, dga)
            u[0], u[1], u[2] = ux, uy, uz
            _monomials(u, parent, direction, mono)
            gmi = gmf[i, sj]
            if half:
                gmj = gmf[j, si]
                for x in range(KC):
                    gmp[x] = gmi[x] + parity_kc[x] * gmj[x]
            else:
                for x in range(KC):
                    gmp[x] = gmi[x]
            for c in range(C):
                adj[c] = 0.0
            for k in range(K):
                dot = 0.0
                a = ga[k]
                for c in range(C):
                    dot += gmp[k * C + c] * mono[c]
                    adj[c] += a * gmp[k * C + c]
                dedr += dga[k] * dot
            # d mono_c / d u_d = dcoef[c, d] mono[dindex[c, d]]: three independent sums
            for c in range(1, C):
                dux += adj[c] * dcoef[c, 0] * mono[dindex[c, 0]]
                duy += adj[c] * dcoef[c, 1] * mono[dindex[c, 1]]
                duz += adj[c] * dcoef[c, 2] * mono[dindex[c, 2]]
        # u = v / r: dE/dv = dE/dr u + (1 - u u^T) dE/du / r
        proj = dux * ux + duy * uy + duz * uz
        gx = dedr * ux + (dux - proj * ux) * inv_r
        gy = dedr * uy + (duy - proj * uy) * inv_r
        gz = dedr * uz + (duz - proj * uz) * inv_r
        forces[i, 0] += gx
        forces[i, 1] += gy
        forces[i, 2] += gz
        forces[j, 0] -= gx
        forces[j, 1] -= gy
        forces[j, 2] -= gz
        if image[i] != b:  # pairs come grouped by configuration: flush the running virial
            _add_virial(virial, b, w)
            w[:] = 0.0
            b = image[i]
        w[0] += vx * gx
        w[1] += vx * gy
        w[2] += vx * gz
        w[3] += vy * gx
        w[4] += vy * gy
        w[5] += vy * gz
        w[6] += vz * gx
        w[7] += vz * gy
        w[8] += vz * gz
    _add_virial(virial, b, w)


@njit(cache=True, inline="always")
def _parity_kc(parity, K: int):
    """(-1)^degree of each monomial, repeated for the K radial parts (flat K*C layout of the moments)."""
    C = parity.shape[0]
    out = np.empty(max(K * C, 1))
    for k in range(K):
        for c in range(C):
            out[k * C + c] = parity[c]
    return out


@njit(cache=True, inline="always")
def _add_virial(virial, b: int, w) -> None:
    if b >= 0:
        for a in range(3):
            for c in range(3):
                virial[b, a, c] += w[3 * a + c]
