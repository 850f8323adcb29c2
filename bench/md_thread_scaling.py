"""The thread-scaling model of mlpkit's BPNN MD step, from per-block costs measured on one thread
(docs/benchmarks/md-speed.md, issue 20).

    python bench/md_thread_scaling.py --atoms 10125 52728 [--threads 1 2 8 32 64] [--check]

A step on T threads is a sequence of launches; in each, every thread runs one block of atoms and the launch
ends with its slowest block. So the model times **every block of every stage on its own, on one thread** (CPU
time of this process: robust to other jobs on the machine, unlike wall time on T threads), with the real block
layouts of T threads, and adds the stages' slowest blocks:

``t(T) = max(Σ_stages max_b cost(stage, b), memory(T)) + serial + rebuild(T) / steps per rebuild + launches × latency``

* stages, as ``BPNNPotential.predict`` runs them on T ≥ 2 threads (one launch, a barrier between stages:
  ``potentials/bpnn/step_kernels.py``): pair vectors (equal pair ranges), features (blocks balanced on own +
  crossing pairs), networks + dE/dM (equal atom counts), forces (blocks balanced on own pairs), the crossing
  pairs' hand-over;
* ``serial``: the rest of ``predict`` (Python glue, reordering: one thread), measured as the calling thread's CPU
  time during ``predict`` on 2 threads (the pool runs the blocks), or, with a one-thread numba pool, as
  ``predict`` on one thread minus its stages;
* ``rebuild``: a Verlet rebuild (vesin list on T threads, the rest serial), amortised over
  ``--steps-per-rebuild`` (the bench's *median* step has no rebuild: column ``median step``);
* ``memory(T)`` = bytes per atom-step / min(T × bandwidth per core, bandwidth of the node) (assumed bandwidths);
* ``launches × latency``: ``--launch-us`` per launch (numba workqueue, measured ~15-25 µs here; one launch per
  step where the blocks all run at once, i.e. T ≤ numba's pool size, else five).

Per-block costs of a stage differ (load imbalance) and their sum exceeds the one-block cost where pairs cross
blocks: both are in the measured numbers, not modelled. What the model leaves out: cores slowing each other
(shared caches, memory bandwidth below the floor, turbo) and threads descheduled by other processes.
``--check`` also runs ``predict`` on 2 threads and prints its wall time beside the prediction (meaningful on an
idle machine only).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _cpu(fn, reps: int) -> float:
    """Smallest CPU time (s) of ``reps`` calls of ``fn``."""
    best = float("inf")
    for _ in range(reps):
        c = time.process_time()
        fn()
        best = min(best, time.process_time() - c)
    return best


def measure(n_atoms: int, threads: list[int], steps: int, reps: int) -> dict:
    """Per-stage critical paths (µs/atom/step) for each thread count, the serial rest and a rebuild."""
    import numba
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    from mlpkit.descriptors import atom_kernels as ak
    from mlpkit.descriptors import kernel_threads as kt
    from mlpkit.descriptors.graph import concatenate
    from mlpkit.potentials.bpnn.md_graph import MDGraph
    from mlpkit.potentials.bpnn.network_kernels import CompiledNetworks, networks_block
    from mlpkit.potentials.registry import create_potential
    from water_boxes import n_side_for, water_box

    torch.set_num_threads(1)
    atoms = water_box(n_side_for(n_atoms))
    n = len(atoms)
    pot = create_potential("bpnn", [atoms], dtype="float64")
    d = pot.module.descriptor
    params = pot.kernel_parameters.args()
    ints, degree, weight, pair_a, pair_b = params[1], params[4], params[5], params[7], params[8]
    nets = CompiledNetworks()
    nets.update(pot.module)
    rng = np.random.default_rng(0)
    # the serial rest of predict: where the one-launch step runs (a numba pool of 2+ threads), the calling
    # thread's CPU time during predict on 2 threads (it only runs the Python glue: the pool runs the blocks);
    # otherwise predict on one thread minus its stages (medians over steps without a rebuild)
    whole, glue = [], []
    G = np.empty((n, d.n_features))
    M = np.empty((n, d.n_species, d.n_angular, d.n_monomials))
    for threads_now in (1, 2) if numba.config.NUMBA_NUM_THREADS >= 2 else (1,):
        torch.set_num_threads(threads_now)
        for step in range(steps + 2):
            atoms.positions += rng.normal(0, 0.002, (n, 3))
            builds = pot.md_graph.n_builds if pot.md_graph is not None else -1
            c, mine = time.process_time(), time.thread_time()
            pot.predict([atoms])
            t, mine = time.process_time() - c, time.thread_time() - mine
            if step >= 2 and pot.md_graph.n_builds == builds:
                (whole if threads_now == 1 else glue).append(t if threads_now == 1 else mine)
    torch.set_num_threads(1)
    graph = concatenate([pot._md_graph(atoms).ready()])  # vectors computed (the MD path defers them)
    topo = kt.pair_topology(graph.centers, graph.neighbors, n)
    P = graph.centers.shape[0]
    sorted_nl = pot.md_graph._sorted[1]
    cell = np.ascontiguousarray(atoms.cell[:])
    pos = np.ascontiguousarray(atoms.positions[pot.md_graph._sorted[0]])
    vec = np.empty((P, 3))
    energy, grad, forces = np.empty(n), np.empty_like(G), np.empty((n, 3))
    image_energy, virial = np.empty(8), np.empty((2, 3, 3))
    cross_grad = np.empty((P, 3))
    M_saved = np.empty_like(M)

    def stages_for(T: int) -> dict[str, list[float]]:
        """CPU seconds of each block of each stage with the layouts of T threads."""
        blocks = kt._blocks(n, T)
        if blocks == 1:
            fwd = bwd = kt.BlockLayout(np.array([0, n], dtype=np.int64), np.zeros(2, dtype=np.int64), topo.own[:0])
        else:
            fwd, bwd = topo.layout(blocks, with_cross=graph.half), topo.layout(blocks)
        pair_bounds = kt._even_bounds(P, blocks)
        atom_b = kt._even_bounds(n, blocks)
        out: dict[str, list[float]] = {k: [] for k in ("pair vectors", "features", "networks + dE/dM", "forces",
                                                       "crossing hand-over")}  # fmt: skip
        for b in range(blocks):
            out["pair vectors"].append(
                _cpu(
                    partial(
                        ak.pair_vectors_block,
                        pair_bounds[b],
                        pair_bounds[b + 1],
                        pos,
                        sorted_nl.i,
                        sorted_nl.j,
                        sorted_nl.shifts,
                        cell,
                        vec,
                    ),
                    reps,
                )
            )
            out["features"].append(_cpu(partial(ak.features_block, fwd.bounds[b], fwd.bounds[b + 1], graph.vectors,
                                                graph.centers, graph.neighbors, graph.species, graph.half,
                                                topo.own_start, topo.own, topo.direct, fwd.cross_start[b : b + 2],
                                                fwd.cross, G, M, *params), reps))  # fmt: skip
        M_saved[:] = M
        for b in range(blocks):
            a0, a1 = atom_b[b], atom_b[b + 1]
            t_net = _cpu(partial(networks_block, a0, a1, G, graph.species, graph.image, nets.weights, nets.layout,
                                 nets.code, nets.scale, energy, grad, image_energy), reps)  # fmt: skip
            t_dm = float("inf")
            for _ in range(reps):
                M[a0:a1] = M_saved[a0:a1]
                c = time.process_time()
                ak.moment_grads_block(a0, a1, grad, M, ints, degree, weight, pair_a, pair_b)
                t_dm = min(t_dm, time.process_time() - c)
            out["networks + dE/dM"].append(t_net + t_dm)
        for b in range(blocks):
            a0, a1 = bwd.bounds[b], bwd.bounds[b + 1]
            out["forces"].append(_cpu(partial(ak.forces_block, a0, a1, graph.vectors, graph.neighbors, graph.species,
                                              graph.image, graph.half, topo.own_start, topo.own, grad, M, forces,
                                              cross_grad, virial, *params), reps))  # fmt: skip
            out["crossing hand-over"].append(_cpu(partial(ak.cross_forces_block, bwd.cross_start[b],
                                                          bwd.cross_start[b + 1], bwd.cross, graph.neighbors,
                                                          cross_grad, forces), reps))  # fmt: skip
        receiving = int((np.diff(bwd.cross_start) > 0).sum())
        # one launch on a machine whose numba pool has T threads (step_kernels: pair vectors, features, networks +
        # dE/dM, forces, hand-over, with barriers); five where it has fewer (with more blocks than threads the
        # blocks cannot wait for each other), the hand-over's only if several blocks receive crossing pairs
        out["launches"] = [0 if blocks == 1 else 1]
        out["launches without barriers"] = [0 if blocks == 1 else 4 + (receiving > 1)]
        out["crossing pairs"] = [fwd.cross.shape[0] / P]
        out["blocks"] = [blocks]
        return out

    per_t = {T: stages_for(T) for T in threads}
    one = stages_for(1)
    stage_names = ["pair vectors", "features", "networks + dE/dM", "forces", "crossing hand-over"]
    if glue:
        serial = statistics.median(glue)
    else:
        serial = max(0.0, statistics.median(whole) - sum(one[k][0] for k in stage_names))
    # a Verlet rebuild: list (vesin, on the kernels' threads), Morton order, pair index, block layouts
    rebuild, search = [], []
    from mlpkit.descriptors.neighbors import _compute, spatial_order

    for _ in range(3):
        c = time.process_time()
        g2 = concatenate([MDGraph(pot.species, pot.cutoff, pot.verlet_skin).get(atoms)])
        fresh = kt.pair_topology(g2.centers, g2.neighbors, n)
        fresh.layout(2)
        fresh.layout(2, with_cross=True)
        rebuild.append(time.process_time() - c)
        order = spatial_order(atoms.positions, atoms.cell[:], atoms.pbc)
        c = time.process_time()
        _compute(atoms.positions[order], atoms.cell[:], atoms.pbc, pot.cutoff + pot.verlet_skin, threads=1,
                 by_centre=True)  # fmt: skip
        search.append(time.process_time() - c)
    # bytes streamed per atom-step: pair vectors read i, j (int32) and shifts (24 B) and write vectors (24 B);
    # features and forces read vectors and the neighbour index; per atom: G written and read, dE/dG written
    # and read, M written, read + written by dE/dM, read by the forces; forces 24 B
    per_pair = (8 + 24 + 24) + 2 * (24 + 4)
    F, m = d.n_features * 8, d.n_species * d.n_angular * d.n_monomials * 8
    per_atom = 2 * F + 2 * F + 4 * m + 2 * 24
    us = 1e6 / n
    return {
        "atoms": n,
        "pairs_per_atom": P / n,
        "one_block": {k: one[k][0] * us for k in stage_names},
        "stages": {T: _scaled(s, stage_names, us) for T, s in per_t.items()},
        "serial": serial * us,
        "rebuild": statistics.median(rebuild) * us,
        "rebuild: vesin": statistics.median(search) * us,
        "bytes_per_atom_step": per_pair * P / n + per_atom,
        "stage_names": stage_names,
    }


def _scaled(stages: dict, names: list[str], factor: float) -> dict:
    """Stage timings in seconds → µs/atom/step (other entries unchanged)."""
    return {k: [x * factor for x in v] if k in names else v for k, v in stages.items()}


def predict(m: dict, threads: int, opts) -> dict:
    """µs/atom/step predicted for ``threads`` threads (module docstring)."""
    s = m["stages"][threads]
    critical = {k: max(s[k]) for k in m["stage_names"]}
    compute = sum(critical.values())
    memory = m["bytes_per_atom_step"] / (min(threads * opts.bandwidth_core, opts.bandwidth_node) * 1e3)
    vesin = min(m["rebuild: vesin"], m["rebuild"])
    rebuild = (m["rebuild"] - vesin + vesin / threads) / opts.steps_per_rebuild
    launches = s["launches"][0] * opts.launch_us / m["atoms"]
    median_step = max(compute, memory) + m["serial"] + launches
    return {"critical": critical, "compute": compute, "memory": memory, "serial": m["serial"] + launches,
            "median step": median_step, "mean step": median_step + rebuild}  # fmt: skip


def check_two_threads(n_atoms: int, steps: int) -> tuple[float, float]:
    """Measured median wall and CPU µs/atom/step of ``predict`` on 2 threads (steps without a rebuild)."""
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    from mlpkit.potentials.registry import create_potential
    from water_boxes import n_side_for, water_box

    torch.set_num_threads(2)
    atoms = water_box(n_side_for(n_atoms))
    n = len(atoms)
    pot = create_potential("bpnn", [atoms], dtype="float64")
    rng = np.random.default_rng(1)
    wall, cpu = [], []
    for step in range(steps + 2):
        atoms.positions += rng.normal(0, 0.002, (n, 3))
        builds = pot.md_graph.n_builds if pot.md_graph is not None else -1
        w, c = time.perf_counter(), time.process_time()
        pot.predict([atoms])
        w, c = time.perf_counter() - w, time.process_time() - c
        if step >= 2 and pot.md_graph.n_builds == builds:
            wall.append(w)
            cpu.append(c)
    torch.set_num_threads(1)
    return statistics.median(wall) / n * 1e6, statistics.median(cpu) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--atoms", nargs="+", type=int, default=[10125, 52728])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2, 8, 32, 64])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--reps", type=int, default=3, help="timings of each block (the smallest is kept)")
    p.add_argument("--bandwidth-core", type=float, default=10.0, help="GB/s one core streams (assumed)")
    p.add_argument("--bandwidth-node", type=float, default=200.0, help="GB/s of the whole node (assumed)")
    p.add_argument("--launch-us", type=float, default=20.0, help="µs per parallel launch (workqueue, measured)")
    p.add_argument("--steps-per-rebuild", type=float, default=7.0, help="MD steps per Verlet rebuild (300 K water)")
    p.add_argument("--check", action="store_true", help="also time predict on 2 threads (idle machine only)")
    opts = p.parse_args(argv)
    for size in opts.atoms:
        m = measure(size, opts.threads, opts.steps, opts.reps)
        print(f"\n{m['atoms']} atoms, {m['pairs_per_atom']:.1f} pairs/atom (half list with skin)")
        print(
            "one block, CPU µs/atom/step: "
            + ", ".join(f"{k} {v:.2f}" for k, v in m["one_block"].items())
            + f"; serial rest {m['serial']:.2f}; rebuild {m['rebuild']:.2f} (vesin {m['rebuild: vesin']:.2f})"
        )
        print(f"bytes streamed per atom-step (counted): {m['bytes_per_atom_step'] / 1e3:.1f} KB")
        print("\nslowest block of each stage (µs/atom/step) and its excess over the mean block:")
        print("| threads | blocks | crossing pairs | " + " | ".join(m["stage_names"]) + " | launches |")
        print("|---|---|---|" + "---|" * len(m["stage_names"]) + "---|")
        for t in opts.threads:
            s = m["stages"][t]
            cells = [f"{max(s[k]):.3f} (+{max(s[k]) / (sum(s[k]) / len(s[k])) - 1:.0%})" if sum(s[k]) > 0
                     else "0" for k in m["stage_names"]]  # fmt: skip
            print(f"| {t} | {s['blocks'][0]} | {s['crossing pairs'][0]:.1%} | " + " | ".join(cells)
                  + f" | {s['launches'][0]} |")  # fmt: skip
        print(
            "\n| threads | compute (critical path) | memory floor | serial + launches | median step "
            "(no rebuild) | mean step (rebuild amortised) | speed-up (median) | efficiency |"
        )
        print("|---|---|---|---|---|---|---|---|")
        base = predict(m, opts.threads[0], opts)["median step"] * opts.threads[0]
        for t in opts.threads:
            r = predict(m, t, opts)
            print(f"| {t} | {r['compute']:.3f} | {r['memory']:.3f} | {r['serial']:.3f} | {r['median step']:.3f} | "
                  f"{r['mean step']:.3f} | {base / r['median step']:.2f} | "
                  f"{base / r['median step'] / t:.2f} |")  # fmt: skip
        if opts.check:
            wall, cpu = check_two_threads(size, opts.steps)
            pred = predict(m, 2, opts)["median step"] if 2 in m["stages"] else float("nan")
            print(f"\npredict on 2 threads, measured: wall {wall:.2f} µs/atom/step (CPU {cpu:.2f}); model {pred:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
