"""``mlpkit validate``: run the quality checklist on a saved model and write the report.

Data come from extxyz files (``--train``/``--test``) or from a dataset's splits (``--db`` [``--method``]).
The exit code is 0 whatever the checks found (the report is the result) unless ``--strict``, which
exits 1 when a check FAILs; bad input exits 2 like every mlpkit command.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mlpkit.cli import app
from mlpkit.errors import InputError, MissingDependencyError

out = Console()
if not out.is_terminal:  # piped or redirected: no terminal width to fit, keep table rows readable
    out = Console(width=150)
err = Console(stderr=True)

_STYLE = {"PASS": "bold green", "FAIL": "bold red", "WARN": "bold yellow", "SKIP": "dim"}


def _load_data(train: Path | None, test: Path | None, db: str | None, method: str | None):
    from mlpkit.data import read_structures

    def from_file(path: Path, what: str):
        images = read_structures(path)
        for i, atoms in enumerate(images):
            calc = atoms.calc
            if calc is None or "energy" not in calc.results or "forces" not in calc.results:
                raise InputError(
                    f"{what} file {path}: configuration {i} has no energy and forces "
                    "(validation compares with reference labels)"
                )
        return images

    tr = from_file(train, "training") if train else None
    te = from_file(test, "test") if test else None
    if (tr is None or te is None) and db is None:
        raise InputError("give the data: --train FILE and --test FILE, or --db DATABASE (its train/test splits)")
    if db is not None:
        from mlpkit.data import Dataset

        if "://" not in db and not Path(db).is_file():
            raise InputError(f"database {db} does not exist")
        ds = Dataset(db)
        if tr is None:
            tr = ds.to_atoms(method=method, split="train")
            if not tr:
                raise InputError(
                    f"{db} has no labelled configurations in the 'train' split"
                    + (f" for method {method}" if method else "")
                    + "; assign splits with `mlpkit data split`"
                )
        if te is None:
            te = ds.to_atoms(method=method, split="test")
            if not te:
                te = ds.to_atoms(method=method, split="valid")
                if te:
                    err.print(f"[yellow]note:[/] {db} has no 'test' split; using the 'valid' split", highlight=False)
            if not te:
                raise InputError(f"{db} has no labelled configurations in the 'test' (or 'valid') split")
    return tr, te


def _reference(reference: str, train, xc, basis, params):
    """The labeler for the frequency comparison: auto (the training data's method), none, or a method name."""
    from mlpkit.data.records import methods_of
    from mlpkit.validation import reference_from_method

    ref = reference.strip().lower()
    if ref == "none":
        return None
    if ref == "auto":
        methods = [m for m in methods_of(train) if m != "unknown"]
        if len(methods) != 1:
            err.print(
                "[yellow]note:[/] cannot tell the reference method from the training data "
                f"({', '.join(methods) or 'no method recorded'}); frequencies are not compared "
                "(use --reference pyscf --xc PBE --basis def2-SVP)",
                highlight=False,
            )
            return None
        try:
            labeler = reference_from_method(methods[0])
        except MissingDependencyError as exc:
            err.print(
                f"[yellow]note:[/] reference {methods[0]} unavailable ({exc}); frequencies not compared",
                highlight=False,
            )
            return None
        if labeler is None:
            err.print(
                f"[yellow]note:[/] no labeler for method {methods[0]!r}; frequencies not compared "
                "(name one with --reference)",
                highlight=False,
            )
        return labeler
    from mlpkit.cli.labeler_options import build_labeler

    return build_labeler(ref, xc=xc, basis=basis, params=params)


@app.command("validate")
def validate_cmd(
    model: Path = typer.Argument(..., help="Directory of a saved model (model.json + weights)."),
    train: Path | None = typer.Option(None, "--train", help="Labelled training configurations (extxyz)."),
    test: Path | None = typer.Option(None, "--test", help="Labelled test configurations (extxyz)."),
    db: str | None = typer.Option(None, "--db", help="Dataset (ASE db file or URL): use its train/test splits."),
    method: str | None = typer.Option(None, "--method", help="With --db: the level of theory of the labels."),
    out_dir: Path | None = typer.Option(None, "--out", "-o", help="Report directory (default: reports/<model name>)."),
    reference: str = typer.Option(
        "auto",
        "--reference",
        help="Method for the reference frequencies: auto (the training data's method), none, or a method name "
        "(pyscf, gfn2, gpaw, emt, ase).",
    ),
    xc: str | None = typer.Option(None, "--xc", help="With --reference pyscf/gpaw: functional."),
    basis: str | None = typer.Option(None, "--basis", help="With --reference pyscf: basis set."),
    param: list[str] | None = typer.Option(
        None, "--param", metavar="KEY=VALUE", help="Extra reference-method option (repeatable, one per option)."
    ),
    nve_steps: int | None = typer.Option(None, "--nve-steps", help="NVE steps [2000]."),
    timestep: float | None = typer.Option(None, "--timestep", help="NVE timestep, fs [0.5]."),
    temperature: float | None = typer.Option(None, "--temperature", help="NVE initial temperature, K [300]."),
    no_nve: bool = typer.Option(False, "--no-nve", help="Skip the NVE check."),
    no_vibrations: bool = typer.Option(False, "--no-vibrations", help="Skip the frequency check."),
    settings_file: Path | None = typer.Option(
        None, "--settings", help="YAML/JSON file of ValidationSettings fields (thresholds); options above win."
    ),
    strict: bool = typer.Option(False, "--strict", help="Exit with code 1 if any check FAILs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
) -> None:
    """Run the quality checklist on MODEL (errors, NVE, invariances, gradients, forces, frequencies, extrapolation).

    Prints a table of PASS/FAIL/WARN/SKIP with the measured values, and writes validation.json, the PNGs and a
    self-contained report.html to --out. Example:

    mlpkit validate models/water-bpnn --train train.extxyz --test test.extxyz --out reports/water-bpnn
    """
    from mlpkit.potentials.registry import load_potential
    from mlpkit.validation import ValidationSettings, validate

    settings = ValidationSettings.from_file(settings_file) if settings_file else ValidationSettings()
    overrides = {"nve_steps": nve_steps, "nve_timestep": timestep, "nve_temperature": temperature}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if no_nve:
        overrides["nve"] = False
    if no_vibrations:
        overrides["vibrations"] = False
    if overrides:
        from pydantic import ValidationError

        try:
            settings = ValidationSettings.model_validate({**settings.model_dump(), **overrides})
        except ValidationError as exc:
            raise InputError(f"bad option: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None

    if not model.is_dir():
        raise InputError(f"model {model} is not a directory (give the folder `mlpkit train` wrote)")
    potential = load_potential(model)
    tr, te = _load_data(train, test, db, method)
    labeler = _reference(reference, tr, xc, basis, param) if settings.vibrations else None
    target = out_dir or Path("reports") / model.resolve().name
    report = validate(
        potential, tr, te, out_dir=target, settings=settings, reference=labeler, progress=not quiet, name=model.name
    )

    table = Table(title=f"Validation of {model.name} ({len(tr)} train / {len(te)} test configurations)")
    table.add_column("check", max_width=28)
    table.add_column("status", justify="center")
    table.add_column("measured", overflow="fold", ratio=3)
    table.add_column("bar", overflow="fold", ratio=2)
    for row in report.checks:
        table.add_row(row.title, f"[{_STYLE[row.status]}]{row.status}[/]", row.value, row.threshold)
    out.print(table)
    c = report.counts
    out.print(
        f"{c['PASS']} PASS, {c['FAIL']} FAIL, {c['WARN']} WARN, {c['SKIP']} SKIP in {report.seconds:.1f} s",
        highlight=False,
    )
    out.print(f"report: {report.html_path}\nnumbers: {report.json_path}", highlight=False)
    if strict and not report.passed:
        raise typer.Exit(1)
