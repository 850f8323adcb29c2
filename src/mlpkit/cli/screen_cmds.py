"""``mlpkit screen``: rank candidates with a (universal) potential, label the top k with a reference method."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mlpkit.cli import app
from mlpkit.cli.labeler_options import build_labeler

out = Console()
err = Console(stderr=True)


@app.command("screen")
def screen_cmd(
    candidates: Path = typer.Argument(..., help="A structure file (any ASE format) or a directory of them."),
    db: str = typer.Option(..., "--db", help="Store for every candidate's model result and the reference labels."),
    out_dir: Path = typer.Option(Path("reports/screen"), "--out", "-o", help="Run directory: report, state, models."),
    model: str = typer.Option("chgnet", "--model", help="Pretrained name (chgnet, chgnet:r2scan) or a saved model."),
    relax: bool = typer.Option(
        False, "--relax", help="Relax each candidate with the model (and the cell if periodic)."
    ),
    fmax: float = typer.Option(0.05, "--fmax", help="Relaxation stops below this force (eV/Å)."),
    max_steps: int = typer.Option(200, "--steps", help="At most this many relaxation steps per candidate."),
    optimizer: str = typer.Option("BFGS", "--optimizer", help="BFGS or FIRE."),
    top: int = typer.Option(10, "--top", "-k", help="Candidates labelled with the reference method (per round)."),
    score: str = typer.Option(
        "energy_per_atom",
        "--score",
        help="energy_per_atom, formation, or an expression over quantities (+ - * /), lowest ranked first.",
    ),
    references: str = typer.Option(
        None, "--references", help="Elemental energies 'H=-13.6,O=-2041' (eV/atom) or elemental structure file(s)."
    ),
    distinct: float = typer.Option(
        0.0, "--distinct", help="Pass over a pick within this score of a pick of the same formula (0: off)."
    ),
    rounds: int = typer.Option(1, "--rounds", help="Closed loop: fine-tune on the labels and re-rank R-1 times."),
    fit: list[str] = typer.Option(None, "--fit", metavar="KEY=VALUE", help="Fine-tune setting (e.g. epochs=30)."),
    method: str = typer.Option("pyscf", "--label", "-m", help="Reference method: pyscf, gfn2, gpaw, ase, emt."),
    param: list[str] = typer.Option(
        None, "--param", "-p", metavar="KEY=VALUE", help="Option of the reference method (repeatable)."
    ),
    calculator: str = typer.Option(None, "--calculator", help="ASE calculator class for --label ase."),
    level_of_theory: str = typer.Option(None, "--level-of-theory", help="Name recorded for --label ase data."),
    workers: int = typer.Option(2, "--workers", "-w", help="Local Dask workers for the labels (0: in-process)."),
    scheduler: str = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler."),
    cluster_config: Path = typer.Option(None, "--cluster-config", help="YAML of a dask-jobqueue cluster."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fine-tunes."),
) -> None:
    """Screen candidates with a potential, label the top k with the reference method, report the ranking."""
    from mlpkit.cli.model_cmds import _key_values
    from mlpkit.workflows.screen import Screen, ScreenSettings
    from mlpkit.workflows.screen.report import summary_lines

    labeler = build_labeler(method, calculator=calculator, level_of_theory=level_of_theory, params=param)
    settings = ScreenSettings(
        model=model, relax=relax, fmax=fmax, max_steps=max_steps, optimizer=optimizer.upper(), top=top, score=score,
        references=references, rounds=rounds, distinct=distinct, fit=_key_values(fit, "--fit"), workers=workers,
        scheduler=scheduler, cluster_config=None if cluster_config is None else str(cluster_config), seed=seed,
    )  # fmt: skip
    run = Screen(candidates, labeler, db, out_dir, settings, say=lambda m: err.print(m, highlight=False))
    try:
        data = run.run()
    except KeyboardInterrupt:
        from mlpkit.cli import Interrupted

        n = run.dataset.count(status="labelled", method=labeler.method)
        raise Interrupted(f"{n} reference label(s) of {labeler.method} in {db}") from None
    table = Table(title=f"{candidates}: top {min(len(data['table']), 2 * top)} by the model ({data['score']})")
    for col in ("rank", "candidate", "formula", "model score", "round", "reference score", "ref. rank"):
        table.add_column(col)
    for r in data["table"][: 2 * top]:
        table.add_row(
            str(r["rank_model"]), r["name"], r["formula"], _num(r["model_score"]), _num(r["round"]),
            _num(r["reference_score"]), _num(r["rank_reference"]),
        )  # fmt: skip
    out.print(table)
    for line in summary_lines(data):
        out.print(line, highlight=False)
    out.print(f"wrote {out_dir / 'report.html'} and {out_dir / 'screen.json'}")


def _num(x) -> str:
    return "–" if x is None else f"{x:.4f}" if isinstance(x, float) else str(x)
