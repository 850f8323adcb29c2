"""Compiled (numba) block kernels of the symmetry functions and their forces: each call handles one block of
atoms (a contiguous range of the Morton-sorted atoms, so a compact region of space), and
:mod:`mlpkit.descriptors.kernel_threads` runs the blocks on several threads at once.

A block writes only its own atoms' rows, so blocks never race and no per-thread copies of the per-atom arrays
are needed (the way LAMMPS domain decomposition avoids them: each domain recomputes the pairs it shares with
a neighbour domain):

* **Features** (:func:`features_block`): the pairs whose centre is in the block add to both atoms when both are
  in it; a pair that crosses into another block adds only to its own atom here, and the other block looks it
  up a second time (its *cross* pairs, :func:`block_pairs`). Cost per thread: own pairs + cross pairs (the
  fraction of pairs that cross falls as blocks grow: 11 % / 6 % of the pairs with 2 blocks at 10k / 53k water
  atoms).
* **dE/dM per atom** (:func:`moment_grads_block`), written over ``M``: per atom.
* **Forces** (:func:`forces_block`): each pair once, by the block of its centre; ``F_i += dE/dv`` and, when the
  neighbour is in the block, ``F_j -= dE/dv``; otherwise dE/dv is left in ``cross_grad[p]`` and the neighbour's
  block subtracts it afterwards (:func:`cross_forces_block`). Virial: one (n_images, 3, 3) array per block.

With one block this is exactly the single-threaded pair pass (nothing crosses). For a given number of blocks
the order of every sum is fixed (deterministic); another number of blocks changes only the order in which a
few contributions are added (~1e-16 relative). ``nogil=True``: the GIL is released.
Units: vectors Å; features as :mod:`mlpkit.descriptors.symmetry`; forces eV/Å; virial eV.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from mlpkit.descriptors import kernel_cache
from mlpkit.descriptors.kernels import (
    _FASTMATH,
    C_ORDER3,
    _lookup,
    _lookup_derivative,
    _lookup_value,
    _monomial_gradient,
    _monomials,
)

kernel_cache.install()  # before any cache=True kernel: one cache stamp over all kernel sources


@njit(cache=True, nogil=True)
def _csr(index, start, out) -> None:
    """Stable counting sort of the pairs by ``index[p]``: pairs of atom a are ``out[start[a]:start[a+1]]``."""
    start[:] = 0
    for p in range(index.shape[0]):
        start[index[p] + 1] += 1
    for a in range(1, start.shape[0]):
        start[a] += start[a - 1]
    fill = start[:-1].copy()
    for p in range(index.shape[0]):
        a = index[p]
        out[fill[a]] = p
        fill[a] += 1


@njit(cache=True, nogil=True)
def pair_topology(centers, own_start, own) -> None:
    """Fill the CSR pair index: pairs of atom ``a`` as centre are ``own[own_start[a]:own_start[a+1]]``
    (increasing pair order). own_start (n_atoms + 1,) int64, own (P,) int32/int64. O(P + n_atoms), serial."""
    _csr(centers, own_start, own)


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def pair_vectors_block(p0, p1, positions, i, j, shifts, cell, out) -> None:
    """``out[p] = positions[j[p]] - positions[i[p]] + shifts[p] @ cell`` (Å) for pairs p0 <= p < p1."""
    for p in range(p0, p1):
        a, b = i[p], j[p]
        s0, s1, s2 = shifts[p, 0], shifts[p, 1], shifts[p, 2]
        for d in range(3):
            out[p, d] = positions[b, d] - positions[a, d] + s0 * cell[0, d] + s1 * cell[1, d] + s2 * cell[2, d]


@njit(cache=True, nogil=True)
def block_pairs(bounds, centers, neighbors, own_start, own, block, cross_start, cross) -> None:
    """For blocks of atoms ``bounds`` (n_blocks + 1,): ``block`` (n_atoms,) the block of each atom, and the
    *cross* pairs (centre in another block) of block b, ``cross[cross_start[b]:cross_start[b+1]]``, grouped by
    the block of their neighbour atom (increasing pair order within a group). ``cross`` must have room for all
    pairs; O(P), serial (once per neighbour list and block layout)."""
    n_blocks = bounds.shape[0] - 1
    for b in range(n_blocks):
        for a in range(bounds[b], bounds[b + 1]):
            block[a] = b
    cross_start[:] = 0
    for p in range(centers.shape[0]):
        bj = block[neighbors[p]]
        if bj != block[centers[p]]:
            cross_start[bj + 1] += 1
    for b in range(1, n_blocks + 1):
        cross_start[b] += cross_start[b - 1]
    fill = cross_start[:-1].copy()
    for b in range(n_blocks):  # pairs in increasing order: walk atoms (own pairs sorted by pair index)
        for a in range(bounds[b], bounds[b + 1]):
            for q in range(own_start[a], own_start[a + 1]):
                p = own[q]
                bj = block[neighbors[p]]
                if bj != b:
                    cross[fill[bj]] = p
                    fill[bj] += 1


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def features_block(a0, a1, vectors, centers, neighbors, species, half, own_start, own, direct, cross_start, cross, G, M,
                   floats, ints, parent, direction, degree, weight, parity, pair_a, pair_b, dindex, dcoef,
                   table_radial, table_angular):  # fmt: skip
    """Features ``G[i]`` (F,) and moments ``M[i]`` (S, K, C) of the block's atoms a0 <= i < a1 (writes no other
    rows): its own pairs (centre in the block; the neighbour too if it is in the block, for half lists), then
    the cross pairs ``cross[cross_start:...]`` whose neighbour is in the block, looked up a second time.

    vectors (P, 3) Å from ``centers[p]`` to ``neighbors[p]``; pairs at or beyond the cutoff are skipped (Verlet
    lists with a skin); ``half``: every pair also counts for its neighbour atom (vector reversed).
    """
    rc, rca, h_r, h_a = floats[0], floats[1], floats[2], floats[3]
    S, nr, K, L = ints[0], ints[1], ints[2], ints[3]
    C = parent.shape[0]
    KC = K * C
    g = np.empty(nr)
    ga = np.empty(max(K, 1))
    mono = np.empty(C)
    y = np.empty(C)
    u = np.empty(3)
    outer = np.empty(max(KC, 1))
    Mf = M.reshape((M.shape[0], S, M.shape[2] * C))
    parity_kc = np.empty(max(KC, 1))
    for x in range(KC):
        parity_kc[x] = parity[x % C]
    rc2 = rc * rc
    base = S * nr
    for i in range(a0, a1):
        for x in range(base):
            G[i, x] = 0.0
    M[a0:a1] = 0.0
    # the block's own pairs (a flat range: pairs are grouped by centre): to the centre, and to the neighbour if
    # it is in the block (half lists)
    for q in range(own_start[a0], own_start[a1]):
        p = q if direct else own[q]
        vx, vy, vz = vectors[p, 0], vectors[p, 1], vectors[p, 2]
        r2 = vx * vx + vy * vy + vz * vz
        if r2 >= rc2:
            continue
        r = math.sqrt(r2)
        i, j = centers[p], neighbors[p]
        si, sj = species[i], species[j]
        _lookup_value(r, h_r, table_radial, g)
        to_j = half and a0 <= j < a1
        gi = G[i, sj * nr : (sj + 1) * nr]
        for k in range(nr):
            gi[k] += g[k]
        if to_j:
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
        for k in range(K):
            for c in range(C):
                outer[k * C + c] = ga[k] * y[c]
        mi = Mf[i, sj]
        for x in range(KC):
            mi[x] += outer[x]
        if to_j:
            mj = Mf[j, si]
            for x in range(KC):
                mj[x] += outer[x] * parity_kc[x]
    # the cross pairs whose neighbour is in the block (half lists): looked up a second time, to the neighbour
    for q in range(cross_start[0], cross_start[1] if half else cross_start[0]):
        p = cross[q]
        vx, vy, vz = vectors[p, 0], vectors[p, 1], vectors[p, 2]
        r2 = vx * vx + vy * vy + vz * vz
        if r2 >= rc2:
            continue
        r = math.sqrt(r2)
        j = neighbors[p]
        si, sj = species[centers[p]], species[j]
        _lookup_value(r, h_r, table_radial, g)
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
        for k in range(K):
            for c in range(C):
                outer[k * C + c] = ga[k] * y[c]
        mj = Mf[j, si]
        for x in range(KC):
            mj[x] += outer[x] * parity_kc[x]
    if K == 0:
        return
    start = np.zeros(L + 2, dtype=np.int64)  # monomials ordered by degree: degree n owns start[n]:start[n+1]
    for c in range(C):
        start[degree[c] + 1] = c + 1
    prod = np.empty(KC)
    for i in range(a0, a1):
        for q in range(pair_a.shape[0]):
            ma, mb = Mf[i, pair_a[q]], Mf[i, pair_b[q]]
            for x in range(KC):  # all products first (vectorised), then the sums by degree
                prod[x] = ma[x] * mb[x]
            for k in range(K):
                pk = prod[k * C : (k + 1) * C]
                gk = G[i, base + (q * K + k) * (L + 1) : base + (q * K + k + 1) * (L + 1)]
                if C == C_ORDER3:  # unrolled: four independent short sums
                    gk[0] = pk[0]
                    gk[1] = pk[1] + pk[2] + pk[3]
                    gk[2] = (pk[4] + pk[5]) + (pk[6] + pk[7]) + (pk[8] + pk[9])
                    gk[3] = ((pk[10] + pk[11]) + (pk[12] + pk[13]) + (pk[14] + pk[15])) + (
                        (pk[16] + pk[17]) + (pk[18] + pk[19])
                    )
                else:
                    for n in range(L + 1):
                        acc = 0.0
                        for c in range(start[n], start[n + 1]):
                            acc += pk[c]
                        gk[n] = acc


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def moment_grads_block(a0, a1, grad_features, M, ints, degree, weight, pair_a, pair_b) -> None:
    """Overwrite ``M[i]`` with dE/dM[i] for a0 <= i < a1, from dE/dG (n_atoms, F):
    ``G5[i, (a, b), k, n] = Σ_{c of degree n} w_c M[i, a, k, c] M[i, b, k, c]`` (weights folded in)."""
    S, nr, K = ints[0], ints[1], ints[2]
    L = ints[3]
    if K == 0:
        return
    C = degree.shape[0]
    n_pairs = pair_a.shape[0]
    base = S * nr
    row = np.empty((S, K, C))
    for i in range(a0, a1):
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
        for s in range(S):
            for k in range(K):
                for c in range(C):
                    M[i, s, k, c] = row[s, k, c]


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def forces_block(a0, a1, vectors, neighbors, species, image, half, own_start, own, grad_features, gm, forces,
                 cross_grad, virial, floats, ints, parent, direction, degree, weight, parity, pair_a, pair_b, dindex,
                 dcoef, table_radial, table_angular):  # fmt: skip
    """Forces (n_atoms, 3) = -dE/dx on the block's atoms a0 <= i < a1 from its own pairs (each pair once), and
    the block's virial (n_images, 3, 3) = Σ_p v_p ⊗ dE/dv_p (overwritten). A pair whose neighbour is in another
    block leaves dE/dv in ``cross_grad[p]`` (P, 3) for :func:`cross_forces_block`. ``gm`` is dE/dM from
    :func:`moment_grads_block` (all atoms), ``image`` (n_atoms,) the configuration of each atom. The radial
    parts are looked up again (cheaper than keeping them)."""
    rc, rca, h_r, h_a = floats[0], floats[1], floats[2], floats[3]
    S, nr, K = ints[0], ints[1], ints[2]
    C = parent.shape[0]
    KC = K * C
    forces[a0:a1] = 0.0
    virial[:] = 0.0
    gmf = gm.reshape((gm.shape[0], S, gm.shape[2] * C))
    parity_kc = np.empty(max(KC, 1))
    for x in range(KC):
        parity_kc[x] = parity[x % C]
    adj = np.empty(C)
    gmp = np.empty(max(KC, 1))
    u = np.empty(3)
    drow = np.empty(nr)
    ga = np.empty(max(K, 1))
    dga = np.empty(max(K, 1))
    mono = np.empty(C)
    rc2 = rc * rc
    for i in range(a0, a1):
        si = species[i]
        oj = si * nr
        w00 = w01 = w02 = w10 = w11 = w12 = w20 = w21 = w22 = 0.0
        for q in range(own_start[i], own_start[i + 1]):
            p = own[q]
            vx, vy, vz = vectors[p, 0], vectors[p, 1], vectors[p, 2]
            r2 = vx * vx + vy * vy + vz * vz
            j = neighbors[p]
            if r2 >= rc2:
                if not a0 <= j < a1:
                    cross_grad[p, 0] = cross_grad[p, 1] = cross_grad[p, 2] = 0.0
                continue
            r = math.sqrt(r2)
            inv_r = 1.0 / r
            ux, uy, uz = vx * inv_r, vy * inv_r, vz * inv_r
            sj = species[j]
            _lookup_derivative(r, h_r, table_radial, drow)
            dedr = 0.0
            oi = sj * nr
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
                dux, duy, duz = _monomial_gradient(adj, mono, dindex, dcoef)
            # u = v / r: dE/dv = dE/dr u + (1 - u u^T) dE/du / r
            proj = dux * ux + duy * uy + duz * uz
            gx = dedr * ux + (dux - proj * ux) * inv_r
            gy = dedr * uy + (duy - proj * uy) * inv_r
            gz = dedr * uz + (duz - proj * uz) * inv_r
            forces[i, 0] += gx
            forces[i, 1] += gy
            forces[i, 2] += gz
            if a0 <= j < a1:
                forces[j, 0] -= gx
                forces[j, 1] -= gy
                forces[j, 2] -= gz
            else:
                cross_grad[p, 0], cross_grad[p, 1], cross_grad[p, 2] = gx, gy, gz
            w00 += vx * gx
            w01 += vx * gy
            w02 += vx * gz
            w10 += vy * gx
            w11 += vy * gy
            w12 += vy * gz
            w20 += vz * gx
            w21 += vz * gy
            w22 += vz * gz
        b = image[i]
        virial[b, 0, 0] += w00
        virial[b, 0, 1] += w01
        virial[b, 0, 2] += w02
        virial[b, 1, 0] += w10
        virial[b, 1, 1] += w11
        virial[b, 1, 2] += w12
        virial[b, 2, 0] += w20
        virial[b, 2, 1] += w21
        virial[b, 2, 2] += w22


@njit(cache=True, nogil=True)
def cross_forces_block(q0, q1, cross, neighbors, cross_grad, forces) -> None:
    """``F_j -= dE/dv_p`` for the cross pairs ``cross[q0:q1]`` (their neighbour atoms j are this block's)."""
    for q in range(q0, q1):
        p = cross[q]
        j = neighbors[p]
        forces[j, 0] -= cross_grad[p, 0]
        forces[j, 1] -= cross_grad[p, 1]
        forces[j, 2] -= cross_grad[p, 2]
