"""Rows of the chosen-initial-set tables in docs/benchmarks/active-learning.md from finished runs.

python bench/active_learning_initial_set/collect.py runs/water-fps-s0 runs/water-fps-s1 ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt_curve(points: list[dict]) -> str:
    return ", ".join(f"{p['n_labels']}→{p['forces_mae'] * 1000:.1f}" for p in points if p.get("forces_mae") is not None)


def main(run_dirs: list[str]) -> None:
    print("| run | AL: labels→test force MAE (meV/Å) | random: labels→test force MAE (meV/Å) | AL / random | wall |")
    print("|---|---|---|---|---|")
    for rd in map(Path, run_dirs):
        summary = json.loads((rd / "report" / "summary.json").read_text())
        base = summary.get("baseline") or {}
        if base.get("saving") is not None:
            verdict = f"**{base['saving']:.0%}** (random needs {base['random_labels_needed']:.1f})"
        else:
            verdict = f"**< {base.get('saving_bound', float('nan')):.0%}** (bound)"
        log = rd.with_suffix(".log")
        wall = ""
        if log.exists():  # the last "   NNNs " step stamp of the run's log
            stamps = [ln.split("s ", 1)[0].strip() for ln in log.read_text(errors="replace").splitlines()]
            secs = [int(s) for s in stamps if s.isdigit()]
            wall = f"{secs[-1]} s" if secs else ""
        print(f"| `{rd}` | {fmt_curve(summary['curve'])} | {fmt_curve(base.get('points', []))} | {verdict} | {wall} |")


if __name__ == "__main__":
    main(sys.argv[1:])
