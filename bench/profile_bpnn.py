"""Where the time of one mlpkit BPNN MD step goes (energy + forces), stage by stage and op by op.

    python bench/profile_bpnn.py --atoms 3000 --threads 1 [--dtype float32]            # compiled kernels (default)
    python bench/profile_bpnn.py --atoms 3000 --torch [--autograd] [--ops 25]           # the torch descriptor

Stages of the compiled path (CPU time of this process, median over ``--steps`` steps, µs/atom): the Verlet
list check and Morton-sorted pair vectors, the descriptor kernel, the networks and their backward (torch), the
forces kernel; then ``pot.predict`` as a whole.

Stages with ``--torch`` (the torch descriptor, mlpkit's path on GPUs and before the kernels):

``neighbour list``   vesin pair search within cutoff (+ skin): paid on a rebuild only, amortised by the skin
``pair vectors``     species lookup, ``x_j - x_i + shift @ cell`` (numpy)
``to torch``         collate into a GraphBatch
``descriptor``       symmetry functions forward
``networks``         per-element networks forward, sum of atomic energies
``backward``         autograd from the energy to the pair vectors
``forces``           scatter of dE/dv onto atoms, copy to numpy

then the top torch operators of a whole step (``torch.profiler``, self CPU time), and the backward grouped by
the forward operator it differentiates.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--atoms", type=int, default=3000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", default="float64")
    p.add_argument("--steps", type=int, default=7)
    p.add_argument("--ops", type=int, default=20, help="operators to list")
    p.add_argument("--skin", type=float, default=None, help="Verlet skin (default: the model's)")
    p.add_argument("--autograd", action="store_true", help="with --torch: the autograd backward, not the fast path")
    p.add_argument("--torch", action="store_true", help="profile the torch descriptor instead of the compiled kernels")
    opts = p.parse_args(argv)

    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    from mlpkit.descriptors.graph import collate, graph_arrays
    from mlpkit.descriptors.neighbors import neighbor_list
    from mlpkit.potentials.bpnn import energy_forces
    from mlpkit.potentials.registry import create_potential
    from water_boxes import n_side_for, water_box

    torch.set_num_threads(opts.threads)
    atoms = water_box(n_side_for(opts.atoms))
    n = len(atoms)
    extra = {} if opts.skin is None else {"verlet_skin": opts.skin}
    pot = create_potential("bpnn", [atoms], dtype=opts.dtype, **extra)
    module = pot.module
    dtype = pot.dtype
    print(f"{n} atoms, {opts.threads} thread(s), {opts.dtype}, {pot!r}")

    if not opts.torch:
        return _profile_compiled(pot, atoms, opts)
    pot.compiled = False

    # the hand-derived backward of the descriptor (``fast``), where this version of mlpkit has it
    supports_fast = "fast" in inspect.signature(module.features).parameters
    fast = {"fast": not opts.autograd} if supports_fast else {}
    print(f"descriptor backward: {'hand-derived (fast=True)' if fast.get('fast') else 'autograd'}")
    stages: dict[str, list[float]] = defaultdict(list)
    clock = time.process_time if opts.threads == 1 else time.perf_counter

    def staged_step() -> None:
        t = [clock()]
        nl = neighbor_list(atoms, pot.cutoff)
        t.append(clock())
        g = graph_arrays(atoms, pot.species, pot.cutoff, nlist=nl)
        t.append(clock())
        batch = collate([g], dtype)
        batch.vectors.requires_grad_(True)
        t.append(clock())
        feats = module.features(batch, **fast)
        t.append(clock())
        energy = module.atomic_energies(batch, feats).sum()
        t.append(clock())
        (grad,) = torch.autograd.grad(energy, batch.vectors)
        t.append(clock())
        forces = torch.zeros(n, 3, dtype=grad.dtype)
        forces.index_add_(0, batch.centers, grad).index_add_(0, batch.neighbors, -grad)
        forces.double().numpy()
        t.append(clock())
        names = ["neighbour list", "pair vectors", "to torch", "descriptor", "networks", "backward", "forces"]
        for name, a, b in zip(names, t[:-1], t[1:], strict=True):
            stages[name].append(b - a)
        stages["pairs"].append(len(nl))

    for _ in range(2):
        staged_step()
    stages.clear()
    for _ in range(opts.steps):
        atoms.positions += np.random.default_rng(len(stages["pairs"])).normal(0, 0.01, (n, 3))
        staged_step()
    pairs = statistics.median(stages.pop("pairs"))
    print(f"\npairs in the list: {pairs:.0f} ({pairs / n:.1f} per atom)")
    _print_stages(stages, n)

    # the real MD path, as the benchmark times it (Verlet list reused while it is valid)
    times = []
    for k in range(opts.steps + 2):
        atoms.positions += np.random.default_rng(100 + k).normal(0, 0.003, (n, 3))
        c = clock()
        pot.predict([atoms])
        times.append(clock() - c)
    per_atom = statistics.median(times[2:]) / n * 1e6
    print(f"\npot.predict (MD path, Verlet skin {pot.verlet_skin} Å): {per_atom:.2f} µs/atom")

    from torch.profiler import ProfilerActivity, profile

    g = graph_arrays(atoms, pot.species, pot.cutoff)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            batch = collate([g], dtype)
            if fast.get("fast", True):
                energy_forces(module, batch)
            else:  # create_graph=True is the training path: autograd through the descriptor
                energy_forces(module, batch, create_graph=True)
    events = prof.key_averages()
    print(f"\ntop operators of descriptor+networks+backward+forces (3 steps, self CPU µs/atom/step), {n} atoms:")
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)
    for e in rows[: opts.ops]:
        print(f"  {e.key:<60} {e.self_cpu_time_total / 3 / n:8.2f}  x{e.count // 3}")
    backward = defaultdict(float)
    for e in events:
        if e.key.startswith("autograd::engine::evaluate_function: "):
            backward[e.key.split(": ", 1)[1]] += e.cpu_time_total / 3 / n
    print("\nbackward by forward operator (total CPU µs/atom/step):")
    for key, v in sorted(backward.items(), key=lambda kv: -kv[1])[: opts.ops]:
        print(f"  {key:<60} {v:8.2f}")
    return 0


def _print_stages(stages: dict[str, list[float]], n: int) -> None:
    """Median seconds per stage as µs/atom and share of the sum."""
    width = max(len(name) for name in stages) + 2
    total = sum(statistics.median(v) for v in stages.values())
    print(f"{'stage':<{width}} {'µs/atom':>9} {'share':>7}")
    for name, v in stages.items():
        m = statistics.median(v)
        print(f"{name:<{width}} {m / n * 1e6:9.2f} {m / total:7.1%}")
    print(f"{'sum':<{width}} {total / n * 1e6:9.2f}")


def _profile_compiled(pot, atoms, opts) -> int:
    """Stages of the compiled-kernel MD step (what ``pot.predict`` runs on the CPU), µs/atom, CPU time."""
    import numpy as np
    import torch

    from mlpkit.descriptors.graph import concatenate
    from mlpkit.descriptors.kernel_threads import pair_topology, symmetry_features, symmetry_forces

    n = len(atoms)
    module, params, ws = pot.module, pot.kernel_parameters, pot._workspace
    d = module.descriptor
    stages: dict[str, list[float]] = defaultdict(list)
    clock = time.process_time if opts.threads == 1 else time.perf_counter

    def staged_step() -> None:
        t = [clock()]
        g = concatenate([pot._md_graph(atoms).ready()])
        t.append(clock())
        feats = ws.get("features", (n, d.n_features))
        moments = ws.get("moments", (n, d.n_species, max(d.n_angular, 1), d.n_monomials))
        topo = ws.topology
        if topo is None or topo.centers is not g.centers:  # once per neighbour list, as kernel_energy_forces
            topo = ws.topology = pair_topology(g.centers, g.neighbors, n)
        symmetry_features(g.vectors, g.centers, g.neighbors, g.species, g.half, feats, moments, *params.args(),
                          topology=topo)  # fmt: skip
        t.append(clock())
        x = torch.from_numpy(feats).to(pot.dtype).requires_grad_(True)
        energy = module.energies_from_features(x, torch.from_numpy(g.species), fold=True).sum()
        t.append(clock())
        (grad,) = torch.autograd.grad(energy, x)
        grad = np.ascontiguousarray(grad.numpy(), dtype=np.float64)
        t.append(clock())
        forces, virial = np.empty((n, 3)), np.empty((1, 3, 3))
        cross_grad = ws.get("cross_grad", (len(g.centers), 3))
        symmetry_forces(g.vectors, g.centers, g.neighbors, g.species, g.image, g.half, grad, moments, forces,
                        virial, *params.args(), topology=topo, cross_grad=cross_grad)  # fmt: skip
        t.append(clock())
        names = ["Verlet list + pair vectors", "descriptor kernel", "networks", "networks backward", "forces kernel"]
        for name, a, b in zip(names, t[:-1], t[1:], strict=True):
            stages[name].append(b - a)

    rng = np.random.default_rng(0)
    for k in range(opts.steps + 2):
        atoms.positions += rng.normal(0, 0.003, (n, 3))
        staged_step()
        if k < 2:
            stages.clear()
    print(f"compiled kernels, Verlet skin {pot.verlet_skin} Å (rebuilds amortised: the list is rarely rebuilt)")
    _print_stages(stages, n)
    times = []
    for _ in range(opts.steps + 2):
        atoms.positions += rng.normal(0, 0.003, (n, 3))
        c = clock()
        pot.predict([atoms])
        times.append(clock() - c)
    print(f"\npot.predict (MD path): {statistics.median(times[2:]) / n * 1e6:.2f} µs/atom")
    return 0


if __name__ == "__main__":
    sys.exit(main())
