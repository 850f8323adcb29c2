"""Where the wall time of a multi-threaded mlpkit BPNN MD step goes: a timeline of ``predict`` on T threads.

    python bench/md_step_timeline.py --atoms 10125 52728 [--threads 2] [--steps 9]

On T ≥ 2 threads a step is one parallel launch (``potentials/bpnn/step_kernels.py``: pair vectors, features,
networks + dE/dM, forces, crossing hand-over, a spin barrier after each stage). With the launch's timeline on,
every block stamps the clock at the start, after its work of each stage and after each barrier; the script adds
the time before the launch (Python: Verlet check, graph, glue), the launch's start latency (waking the pool), the
end latency (waking the caller) and the time after it (forces back in the caller's atom order). Per step:

* ``before launch`` / ``after launch``: serial Python on the calling thread;
* ``start latency``: from the call to the first block starting, and to the last (waking the pool's threads);
* per stage: the slowest block's work (the critical path; wall, and the thread's CPU time, which excludes time
  descheduled) and the mean block's wait at the barrier after it (load imbalance; on a machine shared with
  other jobs also threads descheduled);
* ``end latency``: from the last block finishing to the caller running again;
* thread sleeps: voluntary context switches of all threads per step (each needs a wake-up; on a virtual machine
  waking a halted virtual CPU goes through the hypervisor). A count, robust to other jobs.

Median over steps without a Verlet rebuild, µs/atom/step (wall). Only meaningful on an otherwise idle machine
(other jobs show up as waits). One process per size; the model (``bench/md_thread_scaling.py``) predicts the
critical path from one-thread block costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _sleeps() -> int:
    """Voluntary context switches of all this process's threads so far (Linux: each is a thread going to sleep
    that something must wake again)."""
    import glob

    total = 0
    for path in glob.glob("/proc/self/task/*/status"):
        try:
            with open(path) as f:
                total += sum(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
        except FileNotFoundError:  # a thread that just ended
            pass
    return total


def timeline(n_atoms: int, threads: int, steps: int) -> dict:
    """Per-step timeline components (µs/atom/step, lists over steps)."""
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    from mlpkit.descriptors.spin_barrier import now_ns
    from mlpkit.potentials.bpnn import step_kernels
    from mlpkit.potentials.registry import create_potential
    from water_boxes import n_side_for, water_box

    torch.set_num_threads(threads)
    atoms = water_box(n_side_for(n_atoms))
    n = len(atoms)
    pot = create_potential("bpnn", [atoms], dtype="float64")
    rng = np.random.default_rng(0)
    rows: dict[str, list[float]] = {}
    us = 1e-3 / n  # ns -> µs/atom
    for step in range(steps + 3):
        atoms.positions += rng.normal(0, 0.002, (n, 3))
        builds = pot.md_graph.n_builds if pot.md_graph is not None else -1
        step_kernels.TIMELINE = []
        sleeps = _sleeps()
        t0 = now_ns()
        pot.predict([atoms])
        t1 = now_ns()
        sleeps = _sleeps() - sleeps
        record, step_kernels.TIMELINE = step_kernels.TIMELINE, None
        if step < 3 or pot.md_graph.n_builds != builds:
            continue
        if len(record) != 1:
            raise RuntimeError("predict did not run the one-launch step (one thread, or fewer numba threads?)")
        called, both, returned = record[0]
        half = both.shape[1] // 2
        stamps, cpu = both[:, :half], both[:, half:]
        first, last_end = stamps[:, 0].min(), stamps[:, -1].max()
        parts = {
            "predict (wall)": t1 - t0,
            "before launch": called - t0,
            "start latency (first block)": first - called,
            "start latency (last block)": stamps[:, 0].max() - called,
        }
        for k, name in enumerate(step_kernels.STAGES):
            start = stamps[:, 2 * k]
            work = stamps[:, 2 * k + 1] - start
            parts[f"{name}: slowest block"] = work.max()
            parts[f"{name}: mean block"] = work.mean()
            parts[f"{name}: slowest block, CPU"] = (cpu[:, 2 * k + 1] - cpu[:, 2 * k]).max()
            if k < len(step_kernels.STAGES) - 1:
                parts[f"{name}: mean wait at barrier"] = (stamps[:, 2 * k + 2] - stamps[:, 2 * k + 1]).mean()
        parts["end latency"] = returned - last_end
        parts["after launch"] = t1 - returned
        parts["launch (first start to last end)"] = last_end - first
        for k, v in parts.items():
            rows.setdefault(k, []).append(float(v) * us)
        rows.setdefault("thread sleeps (voluntary context switches, a count)", []).append(float(sleeps))
    return {"atoms": n, "threads": threads, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--atoms", nargs="+", type=int, default=[10125, 52728])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=9)
    opts = p.parse_args(argv)
    import os

    for size in opts.atoms:
        t = timeline(size, opts.threads, opts.steps)
        rows = t["rows"]
        print(f"\n{t['atoms']} atoms, {t['threads']} threads, {len(rows['predict (wall)'])} steps without a "
              f"rebuild (load average {os.getloadavg()[0]:.2f}); µs/atom/step, wall")  # fmt: skip
        print("| part | median | min |")
        print("|---|---|---|")
        for k, v in rows.items():
            print(f"| {k} | {statistics.median(v):.3f} | {min(v):.3f} |")
        critical = sum(statistics.median(v) for k, v in rows.items() if k.endswith("slowest block"))
        cpu = sum(statistics.median(v) for k, v in rows.items() if k.endswith("slowest block, CPU"))
        print(f"sum of the slowest blocks' work (critical path): {critical:.3f} wall, {cpu:.3f} CPU (wall above CPU:"
              " the thread was descheduled or waited on memory it shares)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
