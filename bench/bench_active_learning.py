"""Active learning vs random sampling: run (or resume) an AL config and print the learning curves as a table.

    python bench/bench_active_learning.py examples/learn-water.yaml --run-dir runs/water
    python bench/bench_active_learning.py --report-only runs/water
    python bench/bench_active_learning.py --report-only runs/water-k5 --compare-baseline runs/water

The run is resumable: run the same command again after an interruption. Numbers come from the run's
report/summary.json (test-set force/energy MAE against reference labels, AL and the random baseline).

``--compare-baseline OTHER_RUN`` measures the saving of this run's AL against the random-sampling curve of
another run. That is only allowed when every setting the baseline depends on is identical in both runs
(reference, driver, seed, initial set, exploration MD conditions, committee training, test set, baseline
settings, validation share); settings that only steer AL's selection (``select.top_k``, ``select.strategy``,
``select.min_distance``, ``explore.bias(_width)``, ``trust``, ``stop``, ``max_iterations``, ``baseline.enabled``) may
differ, so an AL-only run (``baseline: {enabled: false}``) can be measured against the random curve of a run
with the same seed. The points of the other run's random curve are then draws at the same conditions (the very
same draws when the seed and the label counts match); only their spacing (which follows AL's batch size) and the
per-point training seeds can differ from what this run's own baseline would use.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def table(summary: dict) -> str:
    from mlpkit.workflows.active_learning.report import _spread

    rows = [
        "| curve | labels | test force MAE (meV/Å) | test energy MAE (meV/atom) "
        "| frame median; by temperature (meV/Å) |",
        "|---|---|---|---|---|",
    ]
    for c in summary.get("curve", []):
        if c.get("forces_mae") is not None:
            rows.append(
                f"| AL iter {c['iteration']} | {c['n_labels']} | {c['forces_mae'] * 1000:.1f} | "
                f"{c['energy_mae_per_atom'] * 1000:.2f} | {_spread(c)} |"
            )
    base = summary.get("baseline") or {}
    for p in base.get("points", []):
        if p.get("forces_mae") is not None:
            rows.append(
                f"| random | {p['n_labels']} | {p['forces_mae'] * 1000:.1f} | {p['energy_mae_per_atom'] * 1000:.2f} "
                f"| {_spread(p)} |"
            )
    rows.append("")
    rows.append(f"stopped: {summary.get('stopped_because')}")
    rows.append(f"saving: {base.get('verdict', 'no baseline')}")
    return "\n".join(rows)


#: config keys that may differ between two runs whose random baselines are interchangeable (they only steer AL)
AL_ONLY_KEYS = {"name", "max_iterations", "label_budget", "trust", "stop", "execution"}
AL_ONLY_SELECT_KEYS = {"top_k", "strategy", "min_distance"}
#: the bias steers AL's walkers only; random sampling runs plain driver MD at the exploration conditions
AL_ONLY_EXPLORE_KEYS = {"bias", "bias_width"}


def baseline_settings(config: dict) -> dict:
    """The part of a run's config.json that its random baseline depends on (settings added since the run was
    made take their defaults, as they do when the run is resumed)."""
    from mlpkit.config.active_learning import ActiveLearningConfig

    config = ActiveLearningConfig.model_validate(config).model_dump(mode="json")
    out = {k: v for k, v in config.items() if k not in AL_ONLY_KEYS}
    out["select"] = {k: v for k, v in config.get("select", {}).items() if k not in AL_ONLY_SELECT_KEYS}
    out["explore"] = {k: v for k, v in config.get("explore", {}).items() if k not in AL_ONLY_EXPLORE_KEYS}
    # whether this run computed its own baseline does not change what the other run's baseline measured
    out["baseline"] = {k: v for k, v in config.get("baseline", {}).items() if k != "enabled"}
    return out


def step_results(run_dir: Path) -> dict:
    """Each finished step's result from a run's state.json (any state format version mlpkit reads)."""
    from mlpkit.workflows.engine import WorkflowState

    state = WorkflowState(run_dir / "state.json")
    return {k: state.result(k) for k in state.steps}


def al_curve(run_dir: Path) -> list[dict]:
    """AL test errors per finished training (from the report, or from state.json of an unfinished run)."""
    rep = run_dir / "report" / "summary.json"
    if rep.exists():
        return json.loads(rep.read_text())["curve"]
    done = step_results(run_dir)
    out = []
    for i in range(1000):
        r = done.get(f"iter{i}.train")
        if r is None:
            break
        out.append({"iteration": i, "n_labels": r["n_labels"], **r["test"]})
    return out


def compare_baseline(run_dir: Path, other: Path) -> str:
    """Saving of ``run_dir``'s final AL error against ``other``'s random curve (settings checked first)."""
    from mlpkit.workflows.active_learning.baseline import _log_interp_crossing

    mine = baseline_settings(json.loads((run_dir / "config.json").read_text()))
    theirs = baseline_settings(json.loads((other / "config.json").read_text()))
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if diff:
        raise SystemExit(f"the random baselines of {run_dir} and {other} are not comparable: {diff} differ")
    done = step_results(other)
    points = [done[k] for k in sorted((k for k in done if k.startswith("baseline.point")), key=lambda k: int(k[14:]))]
    curve = al_curve(run_dir)
    final = curve[-1]
    xs = [p["n_labels"] for p in points]
    ys = [p["forces_mae"] for p in points]
    rows = [
        f"random curve of {other} (same baseline settings): "
        + ", ".join(f"{x}: {y * 1000:.1f}" for x, y in zip(xs, ys, strict=True))
        + " meV/Å"
    ]
    for c in curve[1:]:
        n_r = _log_interp_crossing(xs, ys, c["forces_mae"])
        rows.append(
            f"  AL {c['n_labels']} labels, {c['forces_mae'] * 1000:.1f} meV/Å: random needs "
            + (f"{n_r:.1f} ({c['n_labels'] / n_r:.0%})" if n_r else f"> {xs[-1]}")
        )
    needed = _log_interp_crossing(xs, ys, final["forces_mae"])
    if needed is None:
        rows.append(
            f"random did not reach AL's {final['forces_mae'] * 1000:.1f} meV/Å within {xs[-1]} labels: "
            f"AL ({final['n_labels']} labels) needed < {final['n_labels'] / xs[-1]:.0%}"
        )
    else:
        rows.append(
            f"AL: {final['n_labels']} labels, {final['forces_mae'] * 1000:.1f} meV/Å; random needs {needed:.1f} "
            f"labels for that; saving ratio {final['n_labels'] / needed:.0%}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", help="active-learning YAML")
    ap.add_argument("--run-dir", default=None)
    ap.add_argument("--report-only", metavar="RUN_DIR", default=None, help="only print the table of a finished run")
    ap.add_argument(
        "--compare-baseline",
        metavar="OTHER_RUN_DIR",
        default=None,
        help="also measure the saving against another run's random curve (only if its baseline settings match)",
    )
    args = ap.parse_args(argv)
    if args.report_only:
        run_dir = Path(args.report_only)
    else:
        if not args.config:
            ap.error("give a config, or --report-only RUN_DIR")
        from mlpkit.config.active_learning import ActiveLearningConfig
        from mlpkit.workflows.active_learning.loop import run_active_learning

        cfg = ActiveLearningConfig.from_yaml(args.config)
        run_dir = Path(args.run_dir or Path("runs") / cfg.name)
        run_active_learning(cfg, run_dir, progress=False, log=lambda m: print(m, file=sys.stderr, flush=True))
    summary_path = run_dir / "report" / "summary.json"
    if summary_path.exists():
        print(table(json.loads(summary_path.read_text())))
    else:
        print(f"{run_dir}: no report yet; AL curve so far: ", end="")
        print(", ".join(f"{c['n_labels']}: {c['forces_mae'] * 1000:.1f}" for c in al_curve(run_dir)) + " meV/Å")
    if args.compare_baseline:
        print(compare_baseline(run_dir, Path(args.compare_baseline)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
