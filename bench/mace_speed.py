"""Prediction cost per atom per step of the MACE family on a periodic liquid-water box, beside BPNN and mace-torch's
own ASE calculator (same network), float64 and float32.

    python bench/mace_speed.py                   # 4x4x4 molecules (192 atoms), 1 thread
    python bench/mace_speed.py --n-side 3 --steps 5 --json docs/benchmarks/mace-speed.json

Each step moves every atom a little (so nothing is cached), then asks energy + forces through the ASE calculator,
as MD does. Weights are random: cost does not depend on them. The MACE architecture is the family's default
(32 channels, L=1, r_max 5 Å, 2 layers, correlation 3).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def time_calculator(calc, atoms, steps: int, seed: int = 0) -> tuple[float, float]:
    """Mean wall and CPU (this process) seconds per energy+forces call over ``steps`` calls after two warm-ups.

    With one thread the CPU time is what the step costs on an idle core; the wall time also holds waiting for a
    core on a shared machine."""
    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    atoms.calc = calc
    for _ in range(2):
        atoms.positions += rng.normal(0, 0.005, atoms.positions.shape)
        atoms.get_forces()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        atoms.positions += rng.normal(0, 0.005, atoms.positions.shape)
        atoms.get_potential_energy()
        atoms.get_forces()
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-side", type=int, default=4, help="molecules per box edge (3 n³ atoms)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.threads)
    from mlpkit.potentials.bpnn import BPNNPotential
    from mlpkit.potentials.mace import MACEPotential
    from water_boxes import water_box

    box = water_box(args.n_side)
    n = len(box)
    rows = []

    def record(name, times):
        wall, cpu = times
        rows.append(
            {
                "model": name,
                "atoms": n,
                "wall_s_per_step": wall,
                "cpu_s_per_step": cpu,
                "cpu_us_per_atom_step": 1e6 * cpu / n,
                "wall_us_per_atom_step": 1e6 * wall / n,
            }
        )
        print(
            f"{name:42s} {n:5d} atoms  CPU {1e6 * cpu / n:9.1f} µs/atom/step  wall {1e6 * wall / n:9.1f}",
            flush=True,
        )

    record(
        "BPNN float64 (default, compiled kernels)",
        time_calculator(BPNNPotential(["H", "O"]).calculator(), box, args.steps * 4),
    )
    record(
        "BPNN float32", time_calculator(BPNNPotential(["H", "O"], dtype="float32").calculator(), box, args.steps * 4)
    )
    pot = MACEPotential(["H", "O"], device="cpu", avg_num_neighbors=30.0)
    for dtype in ("float64", "float32"):
        with tempfile.TemporaryDirectory() as tmp:
            pot.save(Path(tmp) / "m")
            mine = MACEPotential.load(Path(tmp) / "m", dtype=dtype)
            record(f"mlpkit mace {dtype}", time_calculator(mine.calculator(), box, args.steps))
            # mace-torch's own calculator on the same network (a pickled module we wrote ourselves: trusted)
            from mace.calculators import MACECalculator

            torch.save(mine.module, Path(tmp) / "same.model")
            theirs = MACECalculator(model_paths=str(Path(tmp) / "same.model"), device="cpu", default_dtype=dtype)
            record(f"mace-torch MACECalculator {dtype}", time_calculator(theirs, box, args.steps))
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
