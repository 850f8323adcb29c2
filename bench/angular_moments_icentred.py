"""Is an i-centred angular pass cheaper? The angular moments M computed per atom from all its angular neighbours
(both directions, summed in an L1 buffer, no writes to other atoms) against the pair-centred half-list pass of
``features_block``, and where the i-centred pass spends its time (variants: no table lookup, no outer product, the
outer product with fixed trip counts). One thread, CPU time (minimum of 5 calls), periodic water box:

    OMP_NUM_THREADS=1 python bench/angular_moments_icentred.py 10125

Results and reading: docs/benchmarks/md-speed.md ("Re-tried on 2 Dec").
"""

import math
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

from mlpkit.descriptors.kernels import _FASTMATH, _lookup_value

F = _FASTMATH


@njit(cache=False, inline="always", fastmath=F)
def mono3(x, y, z, m):
    xx, xy, xz, yy, yz, zz = x * x, x * y, x * z, y * y, y * z, z * z
    m[0] = 1.0
    m[1], m[2], m[3] = x, y, z
    m[4], m[5], m[6], m[7], m[8], m[9] = xx, xy, xz, yy, yz, zz
    m[10], m[11], m[12], m[13], m[14] = xx * x, xx * y, xx * z, xy * y, xy * z
    m[15], m[16], m[17], m[18], m[19] = xz * z, yy * y, yy * z, yz * z, zz * z


@njit(cache=False)
def build_angular_list(n, centers, neighbors, vectors, rca2):
    """CSR of signed pairs per atom: own pairs (+1) and reversed pairs (-1) within rca."""
    P = centers.shape[0]
    count = np.zeros(n + 1, np.int64)
    for p in range(P):
        v = vectors[p]
        if v[0] * v[0] + v[1] * v[1] + v[2] * v[2] < rca2:
            count[centers[p] + 1] += 1
            count[neighbors[p] + 1] += 1
    for a in range(n):
        count[a + 1] += count[a]
    fill = count[:-1].copy()
    ap = np.empty(count[n], np.int64)
    sg = np.empty(count[n], np.float64)
    nb = np.empty(count[n], np.int64)
    for p in range(P):
        v = vectors[p]
        if v[0] * v[0] + v[1] * v[1] + v[2] * v[2] < rca2:
            a, b = centers[p], neighbors[p]
            ap[fill[a]], sg[fill[a]], nb[fill[a]] = p, 1.0, b
            fill[a] += 1
            ap[fill[b]], sg[fill[b]], nb[fill[b]] = p, -1.0, a
            fill[b] += 1
    return count, ap, sg, nb


@njit(cache=False, fastmath=F)
def angular_variant(mode, a0, a1, vectors, species, start, ap, sg, nb, M, rca, h_a, table_angular, weight, S, K):
    C = 20
    KC = K * C
    acc = np.zeros(S * KC)
    ga = np.empty(K)
    m = np.empty(C)
    y = np.empty(C)
    rca2 = rca * rca
    sink = 0.0
    for i in range(a0, a1):
        acc[:] = 0.0
        for q in range(start[i], start[i + 1]):
            p = ap[q]
            s = sg[q]
            vx, vy, vz = s * vectors[p, 0], s * vectors[p, 1], s * vectors[p, 2]
            r2 = vx * vx + vy * vy + vz * vz
            if r2 >= rca2:
                continue
            r = math.sqrt(r2)
            if mode == 1:  # no lookup
                for k in range(K):
                    ga[k] = r * (k + 1)
            else:
                _lookup_value(r, h_a, table_angular, ga)
            inv = 1.0 / r
            mono3(vx * inv, vy * inv, vz * inv, m)
            for c in range(C):
                y[c] = m[c] * weight[c]
            if mode == 2:  # no outer product
                sink += ga[0] * y[5] + ga[K - 1] * y[19]
                continue
            base = species[nb[q]] * KC
            if mode == 3:  # outer product with fixed trip counts on the flat acc
                for k in range(6):
                    g = ga[k]
                    o = base + k * 20
                    for c in range(20):
                        acc[o + c] += g * y[c]
                continue
            row = acc[base : base + KC]
            for k in range(K):
                g = ga[k]
                for c in range(C):
                    row[k * C + c] += g * y[c]
        Mi = M[i].reshape(S * KC)
        for x in range(S * KC):
            Mi[x] = acc[x]
    return sink


def cpu(fn, reps=5):
    best = 1e9
    for _ in range(reps):
        c = time.process_time()
        fn()
        best = min(best, time.process_time() - c)
    return best


def main() -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from mlpkit.descriptors import atom_kernels as ak
    from mlpkit.descriptors import kernel_threads as kt
    from mlpkit.descriptors.graph import concatenate
    from mlpkit.potentials.registry import create_potential
    from water_boxes import n_side_for, water_box

    torch.set_num_threads(1)
    n_atoms = int(sys.argv[1]) if len(sys.argv) > 1 else 10125
    atoms = water_box(n_side_for(n_atoms))
    n = len(atoms)
    pot = create_potential("bpnn", [atoms], dtype="float64")
    d = pot.module.descriptor
    params = list(pot.kernel_parameters.args())
    floats, ints = params[0], params[1]
    weight, table_angular = params[5], params[-1]
    pot.predict([atoms])
    graph = concatenate([pot._md_graph(atoms).ready()])
    topo = kt.pair_topology(graph.centers, graph.neighbors, n)
    G = np.empty((n, d.n_features))
    M = np.empty((n, d.n_species, d.n_angular, d.n_monomials))
    fwd = kt.BlockLayout(np.array([0, n], dtype=np.int64), np.zeros(2, dtype=np.int64), topo.own[:0])
    S, K = int(ints[0]), int(ints[2])
    rca, h_a = float(floats[1]), float(floats[3])
    print("S K C", S, K, d.n_monomials, "rc rca", floats[0], rca)

    def features(moments, parameters):
        """features_block over all atoms as one block (the one-thread pass)."""
        pair_lists = (topo.own_start, topo.own, topo.direct, fwd.cross_start[0:2], fwd.cross)
        ak.features_block(0, n, graph.vectors, graph.centers, graph.neighbors, graph.species, graph.half,
                          *pair_lists, G, moments, *parameters)  # fmt: skip

    ints0 = ints.copy()
    ints0[2] = 0  # no angular functions: the radial part alone
    M0 = np.empty_like(M)

    def full():
        features(M, params)

    def radial():
        features(M0, [floats, ints0, *params[2:]])

    start, ap, sg, nb = build_angular_list(n, graph.centers, graph.neighbors, graph.vectors, rca * rca)
    M2 = np.empty_like(M)

    def icent():
        angular_variant(
            0, 0, n, graph.vectors, graph.species, start, ap, sg, nb, M2, rca, h_a, table_angular, weight, S, K
        )

    full()
    radial()
    icent()
    print("M max abs diff", np.abs(M - M2).max(), "max", np.abs(M).max(), "angular entries/atom", start[n] / n)
    u = 1e6 / n
    for _ in range(3):
        tf, tr, ti = cpu(full), cpu(radial), cpu(icent)
        print(
            f"pair-centred: all features {tf * u:.2f}, radial only {tr * u:.2f}, so angular + G5 {(tf - tr) * u:.2f}; "
            f"i-centred angular M {ti * u:.2f} µs/atom"
        )

    names = {1: "no table lookup", 2: "no outer product", 3: "outer product, fixed trip counts"}
    for mode, name in names.items():
        M3 = np.empty_like(M)

        def variant(mode=mode, M3=M3):
            angular_variant(mode, 0, n, graph.vectors, graph.species, start, ap, sg, nb, M3, rca, h_a, table_angular,
                            weight, S, K)  # fmt: skip

        variant()
        print(f"i-centred, {name}: " + ", ".join(f"{cpu(variant) * u:.2f}" for _ in range(3)) + " µs/atom")


if __name__ == "__main__":
    main()
