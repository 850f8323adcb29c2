"""Does SIMD across pairs pay in the forward pass? ``features_block``'s own-pair loop against a variant that
first computes, for a batch of pairs at once, everything that needs no table (r, 1/r, the knot interval and
Hermite weights of both tables, the unit vector and the 20 weighted order-3 monomials: loops LLVM vectorises across
pairs), then per pair only the table rows and the accumulation. One block (one thread), CPU time (minimum of 5
calls, alternating), periodic water box, features and moments compared to the kernel's:

    OMP_NUM_THREADS=1 python bench/features_pair_batches.py 10125 --rounds 8

Results and reading: docs/benchmarks/md-speed.md ("SIMD across pairs").
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

from mlpkit.descriptors.kernels import _FASTMATH

F = _FASTMATH
#: pairs per batch (a compile-time constant: the vectoriser then sees disjoint rows)
NB = 32


@njit(cache=False, fastmath=F, error_model="numpy")
def features_batched(mode, a0, a1, vectors, centers, neighbors, species, half, own_start, own, direct, G, M, floats,
                     ints, weight, parity, pair_a, pair_b, degree, table_radial, table_angular):  # fmt: skip
    """features_block for one block without cross pairs, the prelude of each batch of :data:`NB` pairs vectorised
    (checked in the assembly: vsqrtpd/vdivpd on ymm registers). mode 1: the vectorised part only (its cost)."""
    rc, rca, h_r, h_a = floats[0], floats[1], floats[2], floats[3]
    S, nr, K, L = ints[0], ints[1], ints[2], ints[3]
    C = 20
    KC = K * C
    nkr, nka = table_radial.shape[0], table_angular.shape[0]
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
    # per batch of NB pairs, flat work arrays with rows at constant offsets and a constant trip count, so the
    # vectoriser needs no alias checks: Vb the pair vectors (x, y, z rows), W rows 0-3 radial Hermite weights,
    # 4-7 angular ones, 8-27 weighted monomials, 28 radial knot, 29 angular knot (as floats), 30 inside the cutoff
    Vb = np.empty(3 * NB)
    W = np.empty(31 * NB)
    ga = np.empty(max(K, 1))
    g = np.empty(nr)
    outer = np.empty(max(KC, 1))
    w = np.empty(20)
    for c in range(20):
        w[c] = weight[c]
    (w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16, w17, w18, w19) = (
        w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11], w[12], w[13], w[14], w[15],
        w[16], w[17], w[18], w[19])  # fmt: skip
    top_r, top_a = float(nkr - 2), float(nka - 2)
    far = 2.0 * rc
    q_start, q_end = own_start[a0], own_start[a1]
    for q0 in range(q_start, q_end, NB):
        nb = min(NB, q_end - q0)
        for t in range(nb):
            Vb[t], Vb[NB + t], Vb[2 * NB + t] = vectors[q0 + t, 0], vectors[q0 + t, 1], vectors[q0 + t, 2]
        for t in range(nb, NB):
            Vb[t], Vb[NB + t], Vb[2 * NB + t] = far, 0.0, 0.0
        for t in range(NB):  # vectorised across pairs: no table, no scatter (direct pair order only)
            vx, vy, vz = Vb[t], Vb[NB + t], Vb[2 * NB + t]
            r2 = vx * vx + vy * vy + vz * vz
            W[30 * NB + t] = 1.0 if r2 < rc2 else 0.0
            r = math.sqrt(max(r2, 1e-30))
            inv = 1.0 / r
            tr = min(r, rc) / h_r
            m = min(math.floor(tr), top_r)
            u = tr - m
            v = 1.0 - u
            W[28 * NB + t] = m
            W[t] = (1.0 + 2.0 * u) * v * v
            W[NB + t] = h_r * u * v * v
            W[2 * NB + t] = u * u * (3.0 - 2.0 * u)
            W[3 * NB + t] = h_r * u * u * (u - 1.0)
            ta = min(r, rca) / h_a
            m = min(math.floor(ta), top_a)
            u = ta - m
            v = 1.0 - u
            W[29 * NB + t] = m
            W[4 * NB + t] = (1.0 + 2.0 * u) * v * v
            W[5 * NB + t] = h_a * u * v * v
            W[6 * NB + t] = u * u * (3.0 - 2.0 * u)
            W[7 * NB + t] = h_a * u * u * (u - 1.0)
            x, yy, z = vx * inv, vy * inv, vz * inv
            xx, xy, xz, y2, yz, zz = x * x, x * yy, x * z, yy * yy, yy * z, z * z
            W[8 * NB + t] = w0
            W[9 * NB + t] = w1 * x
            W[10 * NB + t] = w2 * yy
            W[11 * NB + t] = w3 * z
            W[12 * NB + t] = w4 * xx
            W[13 * NB + t] = w5 * xy
            W[14 * NB + t] = w6 * xz
            W[15 * NB + t] = w7 * y2
            W[16 * NB + t] = w8 * yz
            W[17 * NB + t] = w9 * zz
            W[18 * NB + t] = w10 * xx * x
            W[19 * NB + t] = w11 * xx * yy
            W[20 * NB + t] = w12 * xx * z
            W[21 * NB + t] = w13 * xy * yy
            W[22 * NB + t] = w14 * xy * z
            W[23 * NB + t] = w15 * xz * z
            W[24 * NB + t] = w16 * y2 * yy
            W[25 * NB + t] = w17 * y2 * z
            W[26 * NB + t] = w18 * yz * z
            W[27 * NB + t] = w19 * zz * z
        if mode == 1:
            continue
        for t in range(nb):  # per pair: table rows and accumulation
            if W[30 * NB + t] == 0.0:
                continue
            p = q0 + t
            i, j = centers[p], neighbors[p]
            si, sj = species[i], species[j]
            c0, c1, c2, c3 = W[t], W[NB + t], W[2 * NB + t], W[3 * NB + t]
            m = int(W[28 * NB + t])
            lo, hi = table_radial[m], table_radial[m + 1]
            for k in range(nr):
                g[k] = c0 * lo[0, k] + c1 * lo[1, k] + c2 * hi[0, k] + c3 * hi[1, k]
            to_j = half and a0 <= j < a1
            gi = G[i, sj * nr : (sj + 1) * nr]
            for k in range(nr):
                gi[k] += g[k]
            if to_j:
                gj = G[j, si * nr : (si + 1) * nr]
                for k in range(nr):
                    gj[k] += g[k]
            vx, vy, vz = vectors[p, 0], vectors[p, 1], vectors[p, 2]
            if K == 0 or vx * vx + vy * vy + vz * vz >= rca * rca:
                continue
            c0, c1, c2, c3 = W[4 * NB + t], W[5 * NB + t], W[6 * NB + t], W[7 * NB + t]
            m = int(W[29 * NB + t])
            lo, hi = table_angular[m], table_angular[m + 1]
            for k in range(K):
                ga[k] = c0 * lo[0, k] + c1 * lo[1, k] + c2 * hi[0, k] + c3 * hi[1, k]
            for k in range(K):
                for c in range(C):
                    outer[k * C + c] = ga[k] * W[(8 + c) * NB + t]
            mi = Mf[i, sj]
            for x in range(KC):
                mi[x] += outer[x]
            if to_j:
                mj = Mf[j, si]
                for x in range(KC):
                    mj[x] += outer[x] * parity_kc[x]
    if K == 0:
        return
    prod = np.empty(KC)
    for i in range(a0, a1):
        for q in range(pair_a.shape[0]):
            xa, xb = Mf[i, pair_a[q]], Mf[i, pair_b[q]]
            for x in range(KC):
                prod[x] = xa[x] * xb[x]
            for k in range(K):
                pk = prod[k * C : (k + 1) * C]
                gk = G[i, base + (q * K + k) * (L + 1) : base + (q * K + k + 1) * (L + 1)]
                gk[0] = pk[0]
                gk[1] = pk[1] + pk[2] + pk[3]
                gk[2] = (pk[4] + pk[5]) + (pk[6] + pk[7]) + (pk[8] + pk[9])
                gk[3] = ((pk[10] + pk[11]) + (pk[12] + pk[13]) + (pk[14] + pk[15])) + (
                    (pk[16] + pk[17]) + (pk[18] + pk[19])
                )


def cpu(fn, reps=5):
    best = 1e9
    for _ in range(reps):
        c = time.process_time()
        fn()
        best = min(best, time.process_time() - c)
    return best


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("atoms", type=int, nargs="?", default=10125)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from mlpkit.descriptors import atom_kernels as ak
    from mlpkit.descriptors import kernel_threads as kt
    from mlpkit.descriptors.graph import concatenate
    from mlpkit.potentials.registry import create_potential
    from water_boxes import n_side_for, water_box

    torch.set_num_threads(1)
    atoms = water_box(n_side_for(args.atoms))
    n = len(atoms)
    pot = create_potential("bpnn", [atoms], dtype="float64")
    d = pot.module.descriptor
    kp = pot.kernel_parameters
    params = list(kp.args())
    pot.predict([atoms])
    graph = concatenate([pot._md_graph(atoms).ready()])
    topo = kt.pair_topology(graph.centers, graph.neighbors, n)
    fwd = kt.BlockLayout(np.array([0, n], dtype=np.int64), np.zeros(2, dtype=np.int64), topo.own[:0])
    G = np.empty((n, d.n_features))
    M = np.empty((n, d.n_species, d.n_angular, d.n_monomials))
    G2, M2 = np.empty_like(G), np.empty_like(M)
    assert d.n_monomials == 20, "the batched variant spells out angular order 3"
    assert topo.direct, "the batched variant takes pairs in centre order (direct)"

    def kernel():
        lists = (topo.own_start, topo.own, topo.direct, fwd.cross_start[0:2], fwd.cross)
        ak.features_block(0, n, graph.vectors, graph.centers, graph.neighbors, graph.species, graph.half, *lists,
                          G, M, *params)  # fmt: skip

    def batched():
        features_batched(0, 0, n, graph.vectors, graph.centers, graph.neighbors, graph.species, graph.half,
                         topo.own_start, topo.own, topo.direct, G2, M2, kp.floats, kp.ints, kp.weight, kp.parity,
                         kp.pair_a, kp.pair_b, kp.degree, kp.table_radial, kp.table_angular)  # fmt: skip

    def prelude():
        """The batches' vectorised part and the G5 contraction, without the per-pair table rows and sums."""
        features_batched(1, 0, n, graph.vectors, graph.centers, graph.neighbors, graph.species, graph.half,
                         topo.own_start, topo.own, topo.direct, G2, M2, kp.floats, kp.ints, kp.weight, kp.parity,
                         kp.pair_a, kp.pair_b, kp.degree, kp.table_radial, kp.table_angular)  # fmt: skip

    kernel()
    print(f"{n} atoms, {len(graph.centers)} pairs ({len(graph.centers) / n:.1f}/atom), half {graph.half}, "
          f"direct {topo.direct}")  # fmt: skip
    prelude()
    batched()
    print(f"batch of {NB} pairs: features max rel diff {np.abs(G2 - G).max() / np.abs(G).max():.1e}, "
              f"moments {np.abs(M2 - M).max() / np.abs(M).max():.1e}")  # fmt: skip
    u = 1e6 / n
    for _ in range(args.rounds):
        row = [f"kernel {cpu(kernel) * u:.2f}", f"pair batches {cpu(batched) * u:.2f}"]
        row.append(f"batches' vectorised part + G5 alone {cpu(prelude) * u:.2f}")
        print("µs/atom, one thread: " + ", ".join(row))


if __name__ == "__main__":
    main()
