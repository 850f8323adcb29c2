"""One table: which uncertainty source selects best per DFT label (water AL protocol, several seeds per source).

    PYTHONPATH=src python bench/active_learning_uncertainty_sources/collect.py \
        "mixed committee (bpnn+mtp+gap)=runs/water-mixed-s0,runs/water-mixed-s1" \
        "MC-dropout (bpnn, 20 passes)=runs/water-dropout-s0,runs/water-dropout-s1" \
        "MTP γ=../al-mtp/runs/mtp-s0,../al-mtp/runs/mtp-s1" ...

Each argument is ``LABEL=RUN,RUN,...``: finished ``mlpkit learn`` run directories of one uncertainty source (one per
seed). Per source, one row: seeds, AL labels, final test force MAE, AL/random labels (``report/summary.json``'s
baseline: random sampling with the same model, up to 4x AL's labels; "< 25%" is a bound), the Spearman rank
correlation of σ with the true worst force error per test frame for the first committee (iteration 0, 20 labels;
recorded by the run in ``iter-000/metrics.json``, or by ``first_round_calibration.py`` in
``first-round-calibration.json`` beside it), how well the scale of that first σ transfers (the factor σ → expected
worst force error that AL fitted on its few validation frames, divided by the factor the test frames give: 1.27 means
the calibrated σ overstates the test errors by 1.27x, 0.5 understates them 2x), and the time (wall from the summary;
CPU user+sys from ``RUN.time`` written by ``chain.sh``, when there). Per-seed values are listed, then the mean.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _iteration0_spearman(run: Path) -> float | None:
    for path in (run / "iter-000" / "metrics.json", run / "first-round-calibration.json"):
        if path.exists():
            cal = json.loads(path.read_text()).get("calibration_test")
            if cal and cal.get("spearman_config") is not None:
                return float(cal["spearman_config"])
    return None


def _iteration0_scales(run: Path) -> tuple[float | None, float | None]:
    """(scale fitted on the validation frames, scale the test frames give) of the first σ, from the run's record."""
    path = run / "iter-000" / "metrics.json"
    if not path.exists():
        return None, None
    d = json.loads(path.read_text())
    valid, test = d.get("calibration_valid") or {}, d.get("calibration_test") or {}
    return valid.get("scale"), test.get("scale")


def _cpu_seconds(run: Path) -> float | None:
    """user + sys from ``/usr/bin/time -f "%e s wall, %U s user, %S s sys"`` (chain.sh's RUN.time)."""
    path = run.parent / f"{run.name}.time"
    if not path.exists():
        return None
    words = path.read_text().split()
    try:
        return float(words[words.index("user,") - 2]) + float(words[words.index("sys") - 2])
    except (ValueError, IndexError):
        return None


def run_row(run: Path) -> dict:
    """The numbers of one run (None where the run did not record them)."""
    s = json.loads((run / "report" / "summary.json").read_text())
    base = s.get("baseline") or {}
    if base.get("saving") is not None:
        ratio, bound = float(base["saving"]), False
    elif base.get("saving_bound") is not None:
        ratio, bound = float(base["saving_bound"]), True
    else:
        ratio, bound = None, False
    return {
        "run": run.name,
        "labels": int(s["n_labels"]),
        "force_mae": 1000 * float(s["final_metrics"]["forces_mae"]),
        "ratio": ratio,
        "ratio_is_bound": bound,
        "spearman": _iteration0_spearman(run),
        "scales": _iteration0_scales(run),
        "wall": float(s["wall_seconds"]),
        "cpu": _cpu_seconds(run),
    }


def _fmt(values: list, fmt: str, mean: bool = True) -> str:
    shown = ["–" if v is None else format(v, fmt) for v in values]
    known = [v for v in values if v is not None]
    tail = f" (mean {format(sum(known) / len(known), fmt)})" if mean and len(known) > 1 else ""
    return ", ".join(shown) + tail


def _ratio(row: dict) -> str:
    if row["ratio"] is None:
        return "–"
    return ("< " if row["ratio_is_bound"] else "") + f"{100 * row['ratio']:.0f}%"


def main(groups: list[str]) -> None:
    print(
        "| uncertainty source | seeds | AL labels | final test force MAE (meV/Å) | AL / random labels | "
        "Spearman σ vs error, first committee | calibrated σ / test error (validation-fitted scale / test-fitted), "
        "first committee | wall s | CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for group in groups:
        label, _, runs = group.partition("=")
        rows = [run_row(Path(r)) for r in runs.split(",") if r and (Path(r) / "report" / "summary.json").exists()]
        missing = [r for r in runs.split(",") if r and not (Path(r) / "report" / "summary.json").exists()]
        if not rows:
            print(f"| {label} | (no finished run: {', '.join(missing)}) | | | | | | | |")
            continue
        seeds = ", ".join(r["run"] for r in rows) + (f" (unfinished: {', '.join(missing)})" if missing else "")
        ratios = ", ".join(_ratio(r) for r in rows)
        known = [r["ratio"] for r in rows if r["ratio"] is not None]
        if len(known) > 1:
            ratios += f" (mean {100 * sum(known) / len(known):.0f}%, bounds as values)"
        rho = _fmt([r["spearman"] for r in rows], ".2f")
        scales = _fmt([None if None in r["scales"] else r["scales"][0] / r["scales"][1] for r in rows], ".2f")
        print(
            f"| {label} | {seeds} | {_fmt([r['labels'] for r in rows], 'd', mean=False)} | "
            f"{_fmt([r['force_mae'] for r in rows], '.2f')} | {ratios} | {rho} | {scales} | "
            f"{_fmt([r['wall'] for r in rows], '.0f')} | {_fmt([r['cpu'] for r in rows], '.0f')} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
