"""Active learning vs random sampling: run (or resume) an AL config and print the learning curves as a table.

    python bench/bench_active_learning.py examples/learn-water.yaml --run-dir runs/water
    python bench/bench_active_learning.py --report-only runs/water

The run is resumable: run the same command again after an interruption. Numbers come from the run's
report/summary.json (test-set force/energy MAE against reference labels, AL and the random baseline).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def table(summary: dict) -> str:
    rows = ["| curve | labels | test force MAE (meV/Å) | test energy MAE (meV/atom) |", "|---|---|---|---|"]
    for c in summary.get("curve", []):
        if c.get("forces_mae") is not None:
            rows.append(
                f"| AL iter {c['iteration']} | {c['n_labels']} | {c['forces_mae'] * 1000:.1f} | "
                f"{c['energy_mae_per_atom'] * 1000:.2f} |"
            )
    base = summary.get("baseline") or {}
    for p in base.get("points", []):
        if p.get("forces_mae") is not None:
            rows.append(
                f"| random | {p['n_labels']} | {p['forces_mae'] * 1000:.1f} | {p['energy_mae_per_atom'] * 1000:.2f} |"
            )
    rows.append("")
    rows.append(f"stopped: {summary.get('stopped_because')}")
    rows.append(f"saving: {base.get('verdict', 'no baseline')}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", help="active-learning YAML")
    ap.add_argument("--run-dir", default=None)
    ap.add_argument("--report-only", metavar="RUN_DIR", default=None, help="only print the table of a finished run")
    args = ap.parse_args(argv)
    if args.report_only:
        run_dir = Path(args.report_only)
    else:
        if not args.config:
            ap.error("give a config, or --report-only RUN_DIR")
        from mlpkit.active.config import ActiveLearningConfig
        from mlpkit.active.loop import run_active_learning

        cfg = ActiveLearningConfig.from_yaml(args.config)
        run_dir = Path(args.run_dir or Path("runs") / cfg.name)
        run_active_learning(cfg, run_dir, progress=False, log=lambda m: print(m, file=sys.stderr, flush=True))
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    print(table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
