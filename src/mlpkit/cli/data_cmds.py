"""``mlpkit data``: handling reference data in the store (``mlpkit sample``: sample_cmds.py; ``mlpkit label``:
label_cmds.py; labelers from options: labeler_options.py, whose ``build_labeler`` is re-exported here).

Every command validates all of its input (files, elements, geometry, method, database path) before it
writes anything, so a bad input gives one message, exit code 2, and leaves the store as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from ase import Atoms
from rich.console import Console
from rich.table import Table

from mlpkit.cli import app
from mlpkit.cli.labeler_options import build_labeler as build_labeler  # re-exported: its home until the split
from mlpkit.errors import InputError

out = Console()  # results on stdout; progress bars and errors go to stderr

data_app = typer.Typer(help="Inspect and move data: summary, export, import, split.", no_args_is_help=True)
app.add_typer(data_app, name="data")


# -- helpers ------------------------------------------------------------------------------------------------


def parse_floats(text: str, option: str, count: int | None = None) -> tuple[float, ...]:
    """``"0.6,0.2,0.2"`` (commas and/or spaces) -> floats; ``count`` numbers exactly when given."""
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise InputError(f"{option} takes comma-separated numbers like 0.8,0.1,0.1, got {text!r}") from None
    if not values or (count is not None and len(values) != count):
        raise InputError(f"{option} takes {count or 'some'} comma-separated numbers, got {text!r}")
    return values


def _open_db(db: str, must_exist: bool = True):
    from mlpkit.data import Dataset

    if must_exist and "://" not in db and not Path(db).is_file():
        raise InputError(f"database {db} does not exist")
    return Dataset(db)


def _summary_tables(dataset) -> None:
    s = dataset.summary()
    table = Table(
        title=f"{s['url']}",
        caption=f"{s['rows']} configurations, {s['atoms']} atoms, {s['label_seconds']:.1f} s labelling",
    )
    table.add_column("method")
    for status in s["status"]:
        table.add_column(status, justify="right")
    table.add_column("total", justify="right")
    for method, counts in s["methods"].items():
        table.add_row(method, *(str(counts.get(st, 0)) for st in s["status"]), str(sum(counts.values())))
    if len(s["methods"]) != 1:
        table.add_row("[bold]all", *(str(n) for n in s["status"].values()), str(s["rows"]))
    out.print(table)
    if s["sources"]:
        sources = Table(title="sources")
        sources.add_column("source")
        sources.add_column("configurations", justify="right")
        for name, n in s["sources"].items():
            sources.add_row(name, str(n))
        out.print(sources)
    if s["errors"]:
        errors = Table(title="failures (most common reasons)")
        errors.add_column("count", justify="right")
        errors.add_column("reason", overflow="fold")
        for reason, n in s["errors"].items():
            errors.add_row(str(n), reason)
        out.print(errors)


# -- data ---------------------------------------------------------------------------------------------------


@data_app.command("summary")
def data_summary(
    db: str = typer.Option(..., "--db", help="Dataset store."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of tables."),
) -> None:
    """Counts by status, method and source, label time, and the most common failure reasons."""
    dataset = _open_db(db)
    if as_json:
        print(json.dumps(dataset.summary(), indent=2))
    else:
        _summary_tables(dataset)


@data_app.command("export")
def data_export(
    db: str = typer.Option(..., "--db", help="Dataset store."),
    out_path: Path = typer.Option(..., "--out", "-o", help="extxyz file to write."),
    status: str = typer.Option("labelled", "--status", help="pending, labelled or failed."),
    method: str = typer.Option(None, "--method", help="Only this method (level of theory)."),
    split: str = typer.Option(None, "--split", help="Only this split: train, valid or test."),
    source: str = typer.Option(None, "--source", help="Only this source."),
    allow_mixed_methods: bool = typer.Option(
        False, "--allow-mixed-methods", help="Export labels of several methods together (normally refused)."
    ),
) -> None:
    """Write configurations (with energies and forces when labelled) to an extxyz file."""
    dataset = _open_db(db)
    if not out_path.parent.exists():
        raise InputError(f"directory {out_path.parent} for {out_path} does not exist")
    n = dataset.export_extxyz(
        out_path, status=status, method=method, split=split, source=source, allow_mixed_methods=allow_mixed_methods
    )
    out.print(f"wrote {n} {status} configuration(s) to {out_path}")


def _check_labelled(images: list[Atoms], path: str) -> None:
    for i, atoms in enumerate(images):
        calc = atoms.calc
        if calc is None or "energy" not in calc.results or "forces" not in calc.results:
            raise InputError(
                f"{path} frame {i} has no energy and forces (extxyz: energy= in the comment line and a "
                "forces column); to label configurations use `mlpkit label --input`"
            )
        if not np.isfinite(calc.results["energy"]) or not np.all(np.isfinite(calc.results["forces"])):
            raise InputError(f"{path} frame {i} has a non-finite energy or forces")


@data_app.command("import")
def data_import(
    db: str = typer.Option(..., "--db", help="Dataset store (created if missing)."),
    input_path: str = typer.Option(..., "--input", "-i", help="Labelled extxyz (energy in the info, forces)."),
    method: str = typer.Option(
        None, "--method", help="Level of theory of these labels (default: each frame's 'method' info)."
    ),
    source: str = typer.Option(
        None, "--source", help="Source tag (default: each frame's 'source', else the file name)."
    ),
) -> None:
    """Add already-labelled configurations (e.g. the shared reference data); duplicates are skipped."""
    from mlpkit.data import read_structures

    images = read_structures(input_path)
    _check_labelled(images, input_path)
    missing = [i for i, a in enumerate(images) if not (method or a.info.get("method"))]
    if missing:
        raise InputError(f"{input_path} frame {missing[0]} has no 'method' in its info; give it with --method")
    dataset = _open_db(db, must_exist=False)
    report = dataset.import_extxyz(input_path, method=method, source=source)
    out.print(f"imported {report.added} configuration(s), {report.duplicates} duplicate(s) skipped")
    _summary_tables(dataset)


@data_app.command("split")
def data_split(
    db: str = typer.Option(..., "--db", help="Dataset store."),
    fractions: str = typer.Option(
        "0.8,0.1,0.1",
        "--fractions",
        metavar="TRAIN,VALID,TEST",
        help="Train, valid and test fractions, comma-separated, summing to 1.",
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed of the shuffle."),
    method: str = typer.Option(None, "--method", help="Only rows of this method."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Re-assign rows that already have a split."),
) -> None:
    """Tag labelled rows train/valid/test at random (seeded); rows already tagged keep their split."""
    parts = parse_floats(fractions, "--fractions", count=3)
    dataset = _open_db(db)
    counts = dataset.assign_splits(parts, seed=seed, method=method, overwrite=overwrite)
    table = Table(title=f"splits assigned in {db}")
    table.add_column("split")
    table.add_column("newly assigned", justify="right")
    table.add_column("total now", justify="right")
    for split in ("train", "valid", "test"):
        table.add_row(split, str(counts.get(split, 0)), str(dataset.count(split=split, method=method)))
    out.print(table)
