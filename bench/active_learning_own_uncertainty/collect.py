"""Table of active-learning runs whose only uncertainty is the potential's own (GP variance, MTP grade).

    python bench/active_learning_own_uncertainty/collect.py runs/mtp-s0 runs/mtp-s1 runs/gap-s0 ...

Each run is `mlpkit learn bench/active_learning_own_uncertainty/FAMILY-sN.yaml --run-dir runs/FAMILY-sN`: the
committed water example (examples/learn-water.yaml: PySCF PBE/def2-SVP labels, 20 farthest-point initial frames,
500 K exploration, the same 50-frame test set half at 1000 K, random sampling all the way up to 4x AL's labels) with
`committee: {family: FAMILY, n_members: 1}`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(run_dirs: list[str]) -> None:
    print("| run | AL labels | AL test force MAE (meV/Å) | random: labels → force MAE (meV/Å) | saving | wall s |")
    print("|---|---|---|---|---|---|")
    for d in run_dirs:
        s = json.loads((Path(d) / "report" / "summary.json").read_text())
        base = s.get("baseline") or {}
        points = ", ".join(f"{p['n_labels']}→{1000 * p['forces_mae']:.2f}" for p in base.get("points", []))
        verdict = base.get("verdict", "")
        saving = verdict.split("AL needed ")[-1].split(" of the labels")[0] if "AL needed" in verdict else verdict
        print(
            f"| {Path(d).name} | {s['n_labels']} | {1000 * s['final_metrics']['forces_mae']:.2f} | {points} | "
            f"{saving} | {s['wall_seconds']:.0f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
