"""``mlpkit learn`` (run or resume active learning) and ``mlpkit learn-report`` (its curves and summary)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from mlpkit.cli import app

out = Console()  # results on stdout
err = Console(stderr=True)  # progress on stderr


@app.command("learn")
def learn(
    config: Path = typer.Argument(..., help="active-learning YAML (see examples/learn-water.yaml)"),
    run_dir: Path | None = typer.Option(
        None, "--run-dir", "-o", help="run directory (default: runs/<name> in the current directory)"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars or step messages"),
) -> None:
    """Run active learning: label a few, train a committee, explore, label the uncertain, repeat.

    Running the same command again after a crash or Ctrl-C continues from the last finished step; nothing
    already labelled is labelled again.
    """
    from mlpkit.config.active_learning import ActiveLearningConfig
    from mlpkit.workflows.active_learning.loop import run_active_learning

    cfg = ActiveLearningConfig.from_yaml(config)
    run_dir = run_dir if run_dir is not None else Path("runs") / cfg.name
    resumed = (run_dir / "state.json").exists()
    start = time.perf_counter()

    def log(msg: str) -> None:
        if not quiet:
            err.print(f"[dim]{time.perf_counter() - start:7.0f}s[/] {msg}", highlight=False)

    log(f"{'resuming' if resumed else 'starting'} active learning '{cfg.name}' in {run_dir}")
    summary = run_active_learning(cfg, run_dir, progress=not quiet, log=log)
    out.print(f"[bold]stopped:[/] {summary.stopped_because}", highlight=False)
    f = summary.final_metrics
    if f.get("forces_mae") is not None:
        out.print(
            f"{summary.n_labels} reference labels ({summary.n_failed} failed) in {summary.iterations} iteration(s); "
            f"test force MAE {f['forces_mae'] * 1000:.1f} meV/Å, energy MAE {f['energy_mae_per_atom'] * 1000:.2f} "
            "meV/atom",
            highlight=False,
        )
    if summary.baseline:
        out.print(f"random baseline: {summary.baseline.get('verdict', '')}", highlight=False)
    out.print(f"report: {run_dir / 'report' / 'summary.md'}  (model: {run_dir}/iter-{summary.iterations:03d}/model)")


@app.command("learn-report")
def learn_report(run_dir: Path = typer.Argument(..., help="run directory of `mlpkit learn`")) -> None:
    """Write the learning curves (AL vs random), σ-vs-error plots and the summary of a run."""
    from mlpkit.workflows.active_learning.report import regenerate

    report_dir = regenerate(run_dir)
    out.print((report_dir / "summary.md").read_text(), highlight=False, markup=False)
    out.print(f"written to {report_dir}/ (summary.md, summary.json, learning_curve.png, calibration.png)")
