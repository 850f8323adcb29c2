"""MD cost of mlpkit's Behler-Parrinello potential next to TorchANI and MACE, on the same water boxes.

For each model and box size, a fresh subprocess builds the model and the box, runs warm-up steps, then
times MD steps (energy + forces, including the neighbour-list work; atoms moved along seeded 300 K
velocities by 0.5 fs before each step, so positions never repeat and Verlet skins expire as in a real run)
with ``torch.set_num_threads(1)`` and then ``(2)``, and reports the median in µs per atom per step. Peak
memory is the subprocess's ``ru_maxrss``; "memory per atom" is that peak minus the resident memory before
the box's first step (imports, model), divided by the number of atoms (meaningful for the large boxes).

    python bench/bench_md_speed.py                    # full run (~15-25 min on 2 cores)
    python bench/bench_md_speed.py --quick            # 81-1029 atoms, few steps (~2 min)
    python bench/bench_md_speed.py --models mlpkit-bpnn --sizes 1029 10125 --json out.json

Sizes are numbers of atoms (rounded to the nearest ``3 n³`` box). Slow peers are capped (``CAPS``), and a
case is skipped when the previous size's time, scaled linearly, says it would exceed ``--case-budget``;
the table says which.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: default box sizes, atoms (3 n³ for n = 3, 5, 7, 10, 15, 22, 26)
SIZES = [81, 375, 1029, 3000, 10125, 31944, 52728]
QUICK_SIZES = [81, 375, 1029]
#: largest box timed per engine (atoms): MACE costs ~3-5 ms/atom/step on one core here and its peak memory
#: grows ~4 MB/atom (1.9 GB at 375 atoms in float64), so 3,000 atoms would need ~12 GB and ~15 s per step
#: on a shared 24 GiB machine; TorchANI is ~0.1-0.25 ms/atom/step and ~10-20 KB/atom.
CAPS = {"torchani": 52728, "mace": 1029}
#: K and fs: the thermal motion applied between steps
TEMPERATURE = 300.0
TIMESTEP = 0.5


# -- worker (one model, one box, in its own process) ---------------------------------------------------


def _rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def worker(args) -> dict:
    """Time one engine on one box; returns a JSON-able dict (printed on stdout by ``--worker``)."""
    import resource

    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    from peers import make_engine
    from water_boxes import n_side_for, water_box

    torch.set_num_threads(max(args.threads))
    atoms = water_box(n_side_for(args.size), seed=args.seed)
    n = len(atoms)
    t0 = time.perf_counter()
    engine = make_engine(args.model, atoms, args.precision)
    build_s = time.perf_counter() - t0
    rss_before = _rss_bytes()
    # MD-like motion: every atom moves along a 300 K Maxwell-Boltzmann velocity by TIMESTEP per step
    # (straight lines; cumulative, so Verlet skins expire at the rate of a real 0.5 fs water run). Positions
    # are not wrapped, as in an ASE MD run.
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    moving = atoms.copy()
    MaxwellBoltzmannDistribution(moving, temperature_K=TEMPERATURE, rng=np.random.default_rng(args.seed + 1))
    Stationary(moving)
    step_vector = moving.get_velocities() * TIMESTEP * units.fs
    pos = atoms.get_positions()

    cpu_times: list[float] = []

    def one_step() -> float:
        nonlocal pos
        pos = pos + step_vector
        c = time.process_time()
        t = time.perf_counter()
        energy, forces = engine.step(pos)
        dt = time.perf_counter() - t
        cpu_times.append(time.process_time() - c)
        if not (np.isfinite(energy) and np.isfinite(forces).all() and forces.shape == (n, 3)):
            raise RuntimeError(f"{engine.name}: non-finite or misshaped result")
        return dt

    result = {
        "model": args.model,
        "precision": args.precision,
        "name": engine.name,
        "cutoff": engine.cutoff,
        "n_atoms": n,
        "build_s": build_s,
        "threads": {},
    }
    builds = getattr(engine, "neighbor_builds", lambda: None)
    for threads in args.threads:
        torch.set_num_threads(threads)
        warm = [one_step()]
        # a second warm-up step only where steps are cheap (slow peers are warm after one)
        warm += [one_step() for _ in range(args.warmup - 1) if warm[0] < args.budget / 6]
        builds_before = builds()
        times: list[float] = []
        cpu_times.clear()
        start = time.perf_counter()
        while len(times) < args.min_steps or (len(times) < args.steps and time.perf_counter() - start < args.budget):
            times.append(one_step())
        result["threads"][str(threads)] = {
            "median_s": statistics.median(times),
            "min_s": min(times),
            "steps": len(times),
            "warmup_s": warm,
            "us_per_atom": statistics.median(times) / n * 1e6,
            # CPU seconds of this process per step: with one thread, a load-robust estimate of the unloaded time
            "cpu_us_per_atom": statistics.median(cpu_times) / n * 1e6,
            "load_average": os.getloadavg()[0],
            "neighbor_builds": None if builds_before is None else builds() - builds_before,
        }
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    result["peak_rss_mb"] = peak / 2**20
    result["rss_before_mb"] = rss_before / 2**20
    result["kb_per_atom"] = (peak - rss_before) / n / 1024
    return result


# -- driver --------------------------------------------------------------------------------------------


def run_case(model: str, precision: str, size: int, opts) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--model",
        model,
        "--precision",
        precision,
        "--size",
        str(size),
        "--threads",
        *map(str, opts.threads),
        "--steps",
        str(opts.steps),
        "--min-steps",
        str(opts.min_steps),
        "--warmup",
        str(opts.warmup),
        "--budget",
        str(opts.budget),
        "--seed",
        str(opts.seed),
    ]
    env = dict(os.environ)
    # torch.set_num_threads decides the intra-op threads; keep BLAS/OpenMP pools from oversubscribing
    env["OMP_NUM_THREADS"] = str(max(opts.threads))
    env["MKL_NUM_THREADS"] = str(max(opts.threads))
    env["OPENBLAS_NUM_THREADS"] = str(max(opts.threads))
    env.setdefault("PYTHONWARNINGS", "ignore")
    # Idle OpenMP threads sleep instead of spinning: on a machine shared with other jobs, spinning threads
    # fight for the cores and made 2-thread steps 5-20x slower than 1-thread ones here; idle machines barely care.
    env.setdefault("OMP_WAIT_POLICY", opts.omp_wait_policy)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=opts.case_timeout)
    except subprocess.TimeoutExpired:
        return {"model": model, "precision": precision, "size": size, "error": f"timeout {opts.case_timeout} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        return {"model": model, "precision": precision, "size": size, "error": tail[0][:200]}
    return json.loads(lines[-1])


def scaling_exponent(rows: list[dict], threads: str, min_atoms: int = 1000) -> float | None:
    """Slope of log(time per step) against log(atoms) over boxes ≥ ``min_atoms`` (1.0 = linear)."""
    import numpy as np

    pts = [(r["n_atoms"], r["threads"][threads]["median_s"]) for r in rows if r["n_atoms"] >= min_atoms]
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def format_table(results: list[dict], reference: str, threads: list[int]) -> str:
    """Markdown table: one row per (box, model); µs/atom/step (wall, and CPU for one thread) per thread count,
    and ratios peer / ``reference`` on the same box."""
    ref = {r["n_atoms"]: r for r in results if "threads" in r and r["name"] == reference}
    t_cols = [str(t) for t in threads]
    header = ["atoms", "model"]
    for t in t_cols:
        header += [f"{t}T µs/atom", f"{t}T CPU µs/atom"]
    # parallel efficiency from 1 to t threads: wall t1 / (t * t_t); and the work (CPU time, all threads) that
    # the threads add, t-thread CPU / 1-thread CPU (load-robust: idle waiting threads sleep and cost no CPU)
    multi = [t for t in t_cols if t != "1"] if "1" in t_cols else []
    for t in multi:
        header += [f"eff 1→{t}T", f"CPU {t}T/1T"]
    for t in t_cols:
        header.append(f"ratio {t}T")
        if t == "1":
            header.append("ratio 1T CPU")
    header += ["NL builds", "peak RSS MB", "KB/atom", "load avg"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in sorted(results, key=lambda r: (r.get("n_atoms", r.get("size", 0)), r.get("name", r.get("model")))):
        if "threads" not in r:
            name = f"{r['model']} {r['precision']}"
            why = r.get("error") or r.get("skipped", "")
            lines.append(f"| {r['size']} | {name} | " + " | ".join(["—"] * (len(header) - 4)) + f" | {why} | |")
            continue
        cells = [str(r["n_atoms"]), r["name"]]
        th = r["threads"]
        for t in t_cols:
            cells += [f"{th[t]['us_per_atom']:.2f}", f"{th[t]['cpu_us_per_atom']:.2f}"]
        for t in multi:
            cells.append(f"{th['1']['us_per_atom'] / (int(t) * th[t]['us_per_atom']):.2f}")
            cells.append(f"{th[t]['cpu_us_per_atom'] / th['1']['cpu_us_per_atom']:.2f}")
        base = ref.get(r["n_atoms"])
        for t in t_cols:
            keys = ["us_per_atom", "cpu_us_per_atom"] if t == "1" else ["us_per_atom"]
            for key in keys:
                cells.append("—" if base is None else f"{r['threads'][t][key] / base['threads'][t][key]:.2f}")
        nb = [r["threads"][t].get("neighbor_builds") for t in t_cols]
        steps = [r["threads"][t]["steps"] for t in t_cols]
        cells.append("every step" if nb[0] is None else ", ".join(f"{b}/{k}" for b, k in zip(nb, steps, strict=True)))
        cells += [f"{r['peak_rss_mb']:.0f}", f"{r['kb_per_atom']:.1f}" if r["n_atoms"] >= 1000 else "(small)"]
        cells.append("/".join(f"{th[t].get('load_average', float('nan')):.1f}" for t in t_cols))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_line() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, torch {torch.__version__}, "
        f"load average {load[0]:.2f} at start"
    )


def report(results: list[dict], opts) -> None:
    """Print the table, the ratios' reference and the scaling exponents."""
    named = [r for r in results if "threads" in r]
    reference = opts.reference or next((r["name"] for r in named if r["model"] == "mlpkit-bpnn"), "mlpkit-bpnn float64")
    if any(r["name"] == "mlpkit-bpnn float64" for r in named) and opts.reference is None:
        reference = "mlpkit-bpnn float64"
    print()
    print(f"Ratios are peer time / {reference} time on the same box (> 1: mlpkit is faster). 'CPU' is the")
    print("process CPU time per step (load-robust for one thread). NL builds: neighbour-list rebuilds / timed steps")
    print("(TorchANI and MACE: TorchANI keeps a Verlet cell list whose count it does not expose; MACE rebuilds).")
    print(format_table(results, reference, opts.threads))
    print()
    print("Scaling exponent of time per step vs atoms over boxes >= 1000 atoms (1.0 = linear):")
    for name in sorted({r["name"] for r in named}):
        rows = [r for r in named if r["name"] == name]
        exps = {str(t): scaling_exponent(rows, str(t)) for t in opts.threads}
        txt = ", ".join(f"{t}T {e:.2f}" if e is not None else f"{t}T —" for t, e in exps.items())
        print(f"  {name}: {txt}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small boxes (81-1029 atoms), few steps")
    p.add_argument("--models", nargs="+", default=None, help="engines (default: all in bench/peers.py ENGINES)")
    p.add_argument("--precisions", nargs="+", default=None, help="restrict to these precisions (float32/float64)")
    p.add_argument("--sizes", nargs="+", type=int, default=None, help="box sizes in atoms")
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--steps", type=int, default=7, help="timed steps at most (median reported)")
    p.add_argument("--min-steps", type=int, default=3, help="timed steps at least")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per thread count")
    p.add_argument("--budget", type=float, default=30.0, help="s: stop timing a case after this (once min-steps)")
    p.add_argument("--case-budget", type=float, default=240.0, help="s: skip a case expected to take longer")
    p.add_argument("--case-timeout", type=float, default=900.0, help="s: kill a case subprocess after this")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--omp-wait-policy", default="PASSIVE", help="OMP_WAIT_POLICY of the workers (PASSIVE/ACTIVE)")
    p.add_argument("--json", type=Path, default=None, help="write all results here (after every case)")
    p.add_argument("--table-from", type=Path, default=None, help="only print the table of a saved --json file")
    p.add_argument("--reference", default=None, help="engine name the ratios divide by (default mlpkit-bpnn float64)")
    # worker mode
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--precision", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    opts = p.parse_args(argv)

    if opts.worker:
        print(json.dumps(worker(opts)))
        return 0
    if opts.table_from:
        saved = json.loads(opts.table_from.read_text())
        print(
            f"# machine: {saved['machine']}\n# command: {' '.join(Path(a).name for a in saved['argv'][:1])} "
            f"{' '.join(saved['argv'][1:])}\n"
        )
        report(saved["results"], opts)
        return 0

    sys.path.insert(0, str(HERE))
    from peers import ENGINES
    from water_boxes import n_side_for

    if opts.quick:
        opts.sizes = opts.sizes or QUICK_SIZES
        opts.steps, opts.min_steps, opts.warmup, opts.budget = 3, 2, 1, 10.0
        opts.case_budget = min(opts.case_budget, 60.0)
    sizes = sorted({3 * n_side_for(s) ** 3 for s in (opts.sizes or SIZES)})
    models = opts.models or list(ENGINES)
    cases = [(m, prec) for m in models for prec in ENGINES[m][1] if not opts.precisions or prec in opts.precisions]
    print(f"# machine: {machine_line()}", flush=True)
    print(f"# command: {' '.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}", flush=True)

    results: list[dict] = []
    last: dict[tuple[str, str], dict] = {}
    wall = time.perf_counter()
    for size in sizes:
        for model, prec in cases:
            skip = None
            if size > CAPS.get(model, 10**9):
                skip = f"capped at {CAPS[model]} atoms"
            elif (model, prec) in last:
                prev = last[(model, prec)]
                per_step = sum(v["median_s"] for v in prev["threads"].values()) * size / prev["n_atoms"]
                expected = per_step * (opts.warmup + opts.min_steps)
                if expected > opts.case_budget:
                    skip = f"skipped: ~{per_step / len(opts.threads):.0f} s/step expected"
            if skip:
                results.append({"model": model, "precision": prec, "size": size, "skipped": skip})
                print(f"{size:>6} {model} {prec}: {skip}", flush=True)
                continue
            r = run_case(model, prec, size, opts)
            results.append(r)
            if opts.json:  # written after every case, so an interrupted run keeps what it measured
                _write_json(opts.json, results)
            if "threads" in r:
                last[(model, prec)] = r
                times = "  ".join(
                    f"{t}T {v['us_per_atom']:8.1f} (cpu {v['cpu_us_per_atom']:.1f}) µs/atom"
                    for t, v in r["threads"].items()
                )
                print(f"{r['n_atoms']:>6} {r['name']:<24} {times}  peak {r['peak_rss_mb']:.0f} MB", flush=True)
            else:
                print(f"{size:>6} {model} {prec}: FAILED {r['error']}", flush=True)

    report(results, opts)
    print(f"\n# total wall time {time.perf_counter() - wall:.0f} s")
    return 0


def _write_json(path: Path, results: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine_line(), "argv": sys.argv, "results": results}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
