"""Inputs and output of the thread-scaling model of mlpkit's BPNN MD step (docs/benchmarks/md-speed.md).

    python bench/md_thread_scaling.py --atoms 10125 52728 [--threads 8 32 64] [--bandwidth-core 10 --bandwidth-node 200]

Measured here, on one thread (CPU time of this process, median of ``--steps`` steps, µs/atom/step):
the stages of a step (pair vectors, descriptor kernel, networks, dE/dM, forces, hand-over of crossing pairs);
the rest of ``predict`` (Python, reordering: serial); a Verlet rebuild (vesin list, Morton sort, pair index
and block layout: serial), amortised over ``--steps-per-rebuild``; and, from the real block layouts, the
fraction of pairs that cross between blocks at each thread count (those are looked up twice in the forward).
Counted from the arrays a step streams: bytes moved per atom per step.

Predicted (a model, not a measurement), for T threads:
``t(T) = max(compute(T), memory(T)) + serial + launches``, with
``compute(T) = (features × (1 + cross(T)) × imbalance(T) + networks + dE/dM + forces + pair vectors) / T``,
``memory(T) = bytes per atom-step / min(T × bandwidth per core, bandwidth of the node)``,
``serial`` = rest of predict + (rebuild − vesin + vesin / T) / steps per rebuild,
``launches`` = 7 parallel launches per step × ``--launch-us`` µs, over the atoms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(n_atoms: int, steps: int, threads_for_cross: list[int]) -> dict:
    """One-thread stage costs (µs/atom/step), crossing-pair fractions and bytes per atom-step."""
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    from mlpkit.descriptors import kernel_threads as kt
    from mlpkit.descriptors.graph import concatenate
    from mlpkit.potentials.bpnn.md_graph import MDGraph
    from mlpkit.potentials.bpnn.network_kernels import CompiledNetworks
    from mlpkit.potentials.registry import create_potential
    from water_boxes import n_side_for, water_box

    torch.set_num_threads(1)
    atoms = water_box(n_side_for(n_atoms))
    n = len(atoms)
    pot = create_potential("bpnn", [atoms], dtype="float64")
    d, params = pot.module.descriptor, pot.kernel_parameters.args()
    nets = CompiledNetworks()
    nets.update(pot.module)
    G = np.empty((n, d.n_features))
    M = np.empty((n, d.n_species, d.n_angular, d.n_monomials))
    stages: dict[str, list[float]] = {}
    rng = np.random.default_rng(0)
    graph = concatenate([pot._md_graph(atoms)])
    topo = kt.pair_topology(graph.centers, graph.neighbors, n)
    for step in range(steps + 1):
        atoms.positions += rng.normal(0, 0.002, (n, 3))
        t = [time.process_time()]
        graph = concatenate([pot._md_graph(atoms)])
        t.append(time.process_time())
        kt.symmetry_features(graph.vectors, graph.centers, graph.neighbors, graph.species, graph.half, G, M,
                             *params, threads=1, topology=topo)  # fmt: skip
        t.append(time.process_time())
        _, grad = nets(G, graph.species, graph.image, 1, None)
        t.append(time.process_time())
        forces, virial = np.empty((n, 3)), np.empty((1, 3, 3))
        kt.symmetry_forces(graph.vectors, graph.centers, graph.neighbors, graph.species, graph.image, graph.half,
                           grad, M, forces, virial, *params, threads=1, topology=topo)  # fmt: skip
        t.append(time.process_time())
        c = time.process_time()
        pot.predict([atoms])
        t.append(time.process_time() - c)
        if step == 0:
            continue
        for name, dt in zip(["pair vectors", "features", "networks", "dE/dM + forces"], np.diff(t[:5]), strict=True):
            stages.setdefault(name, []).append(dt)
        stages.setdefault("predict", []).append(t[5])
    out = {name: statistics.median(v) / n * 1e6 for name, v in stages.items()}
    out["serial rest"] = max(0.0, out.pop("predict") - sum(out.values()))
    # a Verlet rebuild: list, Morton order, pair index, block layout (all serial)
    rebuild = []
    for _ in range(3):
        c = time.process_time()
        graph = concatenate([MDGraph(pot.species, pot.cutoff, pot.verlet_skin).get(atoms)])
        fresh = kt.pair_topology(graph.centers, graph.neighbors, n)
        fresh.layout(2)
        fresh.layout(2, with_cross=True)
        rebuild.append(time.process_time() - c)
    out["rebuild"] = statistics.median(rebuild) / n * 1e6
    # of which vesin's pair search (which runs on the kernels' threads; the rest of a rebuild is serial)
    from mlpkit.descriptors.neighbors import _compute, spatial_order

    search = []
    for _ in range(3):
        order = spatial_order(atoms.positions, atoms.cell[:], atoms.pbc)
        c = time.process_time()
        _compute(
            atoms.positions[order], atoms.cell[:], atoms.pbc, pot.cutoff + pot.verlet_skin, threads=1, by_centre=True
        )
        search.append(time.process_time() - c)
    out["rebuild: vesin"] = statistics.median(search) / n * 1e6
    P = graph.centers.shape[0]
    # the forward pass's blocks (balanced on own + crossing pairs): crossing fraction and the largest block's
    # share of that work over the mean (the pass waits for the slowest block)
    cross, imbalance = {}, {}
    for T in threads_for_cross:
        lay = topo.layout(T, with_cross=True)
        work = np.diff(topo.own_start[lay.bounds]) + np.diff(lay.cross_start)
        cross[T], imbalance[T] = lay.cross.shape[0] / P, float(work.max() / work.mean())
    # bytes streamed per atom-step: each pass over the pairs reads vectors (24 B) and two int32 indices;
    # pair vectors also read shifts (24 B) and write vectors; per-atom arrays: G (F×8) written, read by the
    # networks, dE/dG written and read by the forces; M (S·K·C×8) written, read + written by dE/dM, read by
    # the forces; forces 24 B
    per_pair = (24 + 8 + 24 + 24) + 2 * (24 + 8)
    F, m = d.n_features * 8, d.n_species * d.n_angular * d.n_monomials * 8
    per_atom = 2 * F + 2 * F + 4 * m + 2 * 24
    return {
        "atoms": n,
        "pairs_per_atom": P / n,
        "stages": out,
        "cross": cross,
        "imbalance": imbalance,
        "bytes_per_atom_step": per_pair * P / n + per_atom,
    }


def predict(m: dict, threads: int, bw_core: float, bw_node: float, launch_us: float, steps_per_rebuild: float):
    """µs/atom/step predicted for ``threads`` threads (module docstring)."""
    s = m["stages"]
    cross, imbalance = m["cross"].get(threads, 0.0), m["imbalance"].get(threads, 1.0)
    features = s["features"] * (1 + cross) * imbalance
    compute = (features + s["networks"] + s["dE/dM + forces"] + s["pair vectors"]) / threads
    memory = m["bytes_per_atom_step"] / (min(threads * bw_core, bw_node) * 1e3)  # GB/s -> bytes per µs: ×1e3
    vesin = min(s["rebuild: vesin"], s["rebuild"])
    serial = s["serial rest"] + (s["rebuild"] - vesin + vesin / threads) / steps_per_rebuild
    launches = 7 * launch_us / m["atoms"]
    return {"compute": compute, "memory": memory, "serial": serial + launches,
            "total": max(compute, memory) + serial + launches}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--atoms", nargs="+", type=int, default=[10125, 52728])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2, 8, 32, 64])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--bandwidth-core", type=float, default=10.0, help="GB/s one core streams (assumed)")
    p.add_argument("--bandwidth-node", type=float, default=200.0, help="GB/s of the whole node (assumed)")
    p.add_argument("--launch-us", type=float, default=20.0, help="µs per parallel launch (workqueue, assumed)")
    p.add_argument("--steps-per-rebuild", type=float, default=7.0, help="MD steps per Verlet rebuild (300 K water)")
    opts = p.parse_args(argv)
    for size in opts.atoms:
        m = measure(size, opts.steps, [t for t in opts.threads if t > 1])
        s = m["stages"]
        print(f"\n{m['atoms']} atoms, {m['pairs_per_atom']:.1f} pairs/atom (half list with skin)")
        print("one thread, CPU µs/atom/step: " + ", ".join(f"{k} {v:.2f}" for k, v in s.items()))
        print(f"bytes streamed per atom-step (counted): {m['bytes_per_atom_step'] / 1e3:.1f} KB")
        print("| threads | crossing pairs | block imbalance | compute | memory floor | serial + launches | predicted |")
        print("|---|---|---|---|---|---|---|")
        for t in opts.threads:
            r = predict(m, t, opts.bandwidth_core, opts.bandwidth_node, opts.launch_us, opts.steps_per_rebuild)
            cross, imb = m["cross"].get(t, 0.0), m["imbalance"].get(t, 1.0)
            print(f"| {t} | {cross:.1%} | {imb:.3f} | {r['compute']:.3f} | {r['memory']:.3f} | {r['serial']:.3f} | "
                  f"{r['total']:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
