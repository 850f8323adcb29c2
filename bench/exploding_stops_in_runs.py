"""When in their walkers did earlier active-learning runs stop as "exploding"? Read-only scan of run directories.

Every exploration segment (``iter-*/explore/walker-*.extxyz``) whose last frame is above 5x its target temperature
(the old stop rule; run_md writes the frame it stopped at) is listed with its step and the calibrated committee
uncertainty there. Stops in the first few steps are a hot start relaxing, not a potential blowing up
(docs/benchmarks/exploding-stop.md).

    python bench/exploding_stops_in_runs.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="active-learning run directories (holding iter-*/)")
    args = ap.parse_args()

    from ase.io import read

    rows, segments = [], 0
    for run in args.runs:
        for path in sorted(run.glob("iter-*/explore/walker-*.extxyz")):
            if not path.stat().st_size:  # a walker stopped before its first frame
                continue
            segments += 1
            last = read(path, -1)
            target = float(last.info.get("target_temperature", 0.0) or 0.0)
            t = float(last.info.get("temperature", 0.0))
            if target and t > 5.0 * target:
                rows.append(
                    (str(path), target, int(last.info.get("step", -1)), t, float(last.info.get("uncertainty", np.nan)))
                )
    print(f"{segments} walker segments, {len(rows)} ended above 5x their target temperature\n")
    print(f"{'step':>6}{'target K':>9}{'T K':>7}{'σ eV/Å':>8}  segment")
    for path, target, step, t, u in sorted(rows, key=lambda r: r[2]):
        print(f"{step:>6}{target:>9.0f}{t:>7.0f}{u:>8.3f}  {path}")
    if rows:
        steps = np.array([r[2] for r in rows])
        early, later = np.sum(steps <= 10), np.sum(steps > 30)
        print(f"\nstopped within 10 steps: {early}, within 30: {np.sum(steps <= 30)}, later: {later}")


if __name__ == "__main__":
    main()
