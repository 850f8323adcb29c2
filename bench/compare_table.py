"""The table of docs/benchmarks/compare.md from one or more ``mlpkit compare`` results (compare.json).

    python bench/compare_table.py reports/compare-water/compare.json [reports/compare-ethanol/compare.json]

Prints, per result: one markdown row per model (errors, train time, MD cost, memory, uncertainty with its Spearman
rank correlation vs the true worst force error per test frame, checklist counts, or the error a model failed with),
then the recommendation ``mlpkit compare`` writes on its page.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

from mlpkit.workflows.compare.report import recommendation


def _n(x: float | None, fmt: str) -> str:
    return "–" if x is None or x != x else format(x, fmt)


def main(paths: list[str]) -> None:
    for path in paths:
        data = json.loads(Path(path).read_text())
        head = f"{data['n_train']} training, {data['n_test']} test configurations, MD box {data['md_atoms']} atoms"
        print(f"\n{path}: {head}\n")
        print(
            "| model | E MAE (meV/atom) | F MAE (meV/Å) | worst F error (meV/Å) | train wall (s) | MD (µs/atom/step) | "
            "memory (KB/atom) | uncertainty (kind, Spearman vs error) | checklist PASS/WARN/FAIL |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for e in data["entries"]:
            if e.get("error"):
                print(f"| {e['name']} | failed: {e['error'][:200]} | | | | | | | |")
                continue
            unc = e["uncertainty"] + ("" if e["uncertainty_spearman"] is None else f", {e['uncertainty_spearman']:.2f}")
            c = e.get("checklist") or {}
            check = "/".join(str(c.get(k, 0)) for k in ("PASS", "WARN", "FAIL")) if c else "–"
            print(
                f"| {e['name']} | {_n(e['energy_mae_mev_atom'], '.3g')} | {_n(e['force_mae_mev_a'], '.3g')} | "
                f"{_n(e['worst_force_error_mev_a'], '.3g')} | {_n(e['train_seconds'], '.1f')} | "
                f"{_n(e['md_us_per_atom_step'], ',.0f')} | {_n(e['memory_kb_per_atom'], '.2g')} | {unc} | {check} |"
            )
        ok = [SimpleNamespace(**e) for e in data["entries"] if not e.get("error")]
        print("\n" + " ".join(recommendation(ok)))


if __name__ == "__main__":
    main(sys.argv[1:])
