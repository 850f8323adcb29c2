"""Wall time of fitting one committee sequentially vs in side-by-side processes (execution.train_processes).

    OMP_NUM_THREADS=1 python bench/committee_parallel_fit.py [--processes 1 2] [--frames 50] [--epochs 1000]

The water example's committee (4 BPNN members, 16x16, cutoff 4 Å, 1000 epochs, final weights) on the first
``--frames`` frames of tests/data/h2o-pbe-svp-500K-nve.extxyz (every 4th frame: spread over the run), 20% held out
for validation. Prints one row per process count: wall seconds, speed-up, and the largest difference of the
predicted forces from the sequential committee on 50 other frames (0: the same committee).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import mlpkit.threads

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    mlpkit.threads.configure_threads()
    from ase.io import read

    from mlpkit.uncertainty import train_committee

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=1000)
    args = ap.parse_args()
    frames = read(ROOT / "tests" / "data" / "h2o-pbe-svp-500K-nve.extxyz", index=":")
    data = frames[0 : 4 * args.frames : 4]
    n_valid = max(1, len(data) // 5)
    train, valid, test = data[n_valid:], data[:n_valid], frames[1::6][:50]
    settings = dict(
        n_members=4,
        bootstrap=False,
        seed=0,
        hyperparameters={"cutoff": 4.0, "hidden": [16, 16], "n_radial": 8, "n_angular": 4},
        epochs=args.epochs,
        keep="last",
        progress=False,
    )
    rows, ref, t1 = [], None, None
    for p in args.processes:
        t = time.perf_counter()
        com = train_committee(train, valid, processes=p, **settings)
        wall = time.perf_counter() - t
        forces = np.concatenate(com.predict(test).forces)
        ref = forces if ref is None else ref
        t1 = wall if t1 is None else t1
        rows.append((p, wall, t1 / wall, float(np.abs(forces - ref).max())))
    print(f"committee of 4 bpnn, {len(train)} + {len(valid)} configurations, {args.epochs} epochs")
    print("| processes | wall s | speed-up | max |ΔF| vs first row (eV/Å) |")
    print("|---|---|---|---|")
    for p, wall, speed, df in rows:
        print(f"| {p} | {wall:.1f} | {speed:.2f} | {df:.1e} |")


if __name__ == "__main__":
    main()
