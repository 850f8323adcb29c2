"""``mlpkit compare``: train several families on the same data, load saved or pretrained models, one table."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mlpkit.cli import app
from mlpkit.cli.model_cmds import load_labelled, training_rows
from mlpkit.errors import InputError

out = Console()
err = Console(stderr=True)


def _settings(items: list[str] | None) -> dict:
    """``["bpnn.hidden=16,16", "bpnn.fit.epochs=300"]`` → {"bpnn": {"hyperparameters": {...}, "fit": {...}}}."""
    from mlpkit.cli.model_cmds import _key_values

    result: dict = {}
    for item in items or []:
        target, sep, rest = item.partition(".")
        if not sep or "=" not in rest:
            raise InputError(f"--set must look like FAMILY.KEY=VALUE or FAMILY.fit.KEY=VALUE, got {item!r}")
        section = "hyperparameters"
        if rest.startswith("fit."):
            section, rest = "fit", rest[len("fit.") :]
        result.setdefault(target, {}).setdefault(section, {}).update(_key_values([rest], "--set"))
    return result


@app.command("compare")
def compare_cmd(
    test: str = typer.Option(..., "--test", "-t", help="Labelled test data (.db with a test split, or extxyz)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Directory for compare.json, models/ and report.html."),
    data: str = typer.Option(None, "--data", "-d", help="Labelled training data for --families (.db or extxyz)."),
    families: str = typer.Option(None, "--families", help="Families to train with their defaults: bpnn,chgnet,..."),
    models: str = typer.Option(None, "--models", help="Saved models or pretrained names: models/x,chgnet,..."),
    settings: list[str] = typer.Option(
        None, "--set", metavar="FAMILY.KEY=VALUE", help="A family's hyperparameter (or FAMILY.fit.KEY=VALUE)."
    ),
    method: str = typer.Option(None, "--method", help="Level of theory of the labels (when the data hold several)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every training."),
    md_atoms: int = typer.Option(300, "--md-atoms", help="Atoms of the box the MD cost is timed on (0: skip)."),
    checklist: bool = typer.Option(True, "--checklist/--no-checklist", help="Run the physics checklist per model."),
) -> None:
    """Every family on the same data: errors, cost, uncertainty and the checklist in one table and one HTML page."""
    from mlpkit.workflows.compare import compare

    names = [f.strip() for f in (families or "").split(",") if f.strip()]
    paths = [m.strip() for m in (models or "").split(",") if m.strip()]
    if names and not data:
        raise InputError("--families trains on --data: give the training data")
    split = "test" if "://" in test or Path(test).suffix in (".db", ".sqlite") else None
    test_images = load_labelled(test, method, split)
    train = training_rows(load_labelled(data, method), None, False, data) if data else []
    entries = compare(
        train,
        test_images,
        out_dir,
        families=names,
        models=paths,
        settings=_settings(settings),
        seed=seed,
        md_atoms=md_atoms,
        run_checklist=checklist,
        say=lambda msg: err.print(msg, highlight=False),
    )
    table = Table(title=f"{out_dir} ({len(train)} training, {len(test_images)} test configurations)")
    for col in ("model", "E MAE meV/atom", "F MAE meV/Å", "train s", "MD µs/atom/step", "uncertainty", "checklist"):
        table.add_column(col)
    for e in entries:
        c = e.checklist or {}
        table.add_row(
            e.name,
            f"{e.energy_mae_mev_atom:.3g}",
            f"{e.force_mae_mev_a:.3g}",
            "–" if e.train_seconds is None else f"{e.train_seconds:.1f}",
            "–" if e.md_us_per_atom_step is None else f"{e.md_us_per_atom_step:.3g}",
            e.uncertainty if e.uncertainty_spearman is None else f"{e.uncertainty} ρ={e.uncertainty_spearman:.2f}",
            "/".join(str(c.get(k, 0)) for k in ("PASS", "WARN", "FAIL")) if c else (e.error or "–")[:60],
        )
    out.print(table)
    out.print(f"wrote {out_dir / 'report.html'}")
