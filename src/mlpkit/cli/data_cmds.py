"""``mlpkit sample`` and ``mlpkit data``: making and handling reference data (``mlpkit label``: label_cmds.py).

Every command validates all of its input (files, elements, geometry, method, database path) before it
writes anything, so a bad input gives one message, exit code 2, and leaves the store as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import typer
from ase import Atoms
from rich.console import Console
from rich.table import Table

from mlpkit.cli import app
from mlpkit.errors import InputError

out = Console()  # results on stdout; progress bars and errors go to stderr

sample_app = typer.Typer(
    help="Make candidate configurations: MD snapshots, rattling, normal-mode sampling.", no_args_is_help=True
)
data_app = typer.Typer(help="Inspect and move data: summary, export, import, split.", no_args_is_help=True)
app.add_typer(sample_app, name="sample")
app.add_typer(data_app, name="data")


# -- helpers ------------------------------------------------------------------------------------------------


def _parse_params(params: list[str] | None) -> dict:
    """``["basis=def2-TZVP", "max_cycle=50"]`` -> dict; values parsed as JSON where possible (numbers, lists)."""
    result: dict = {}
    for item in params or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param must look like key=value, got {item!r}")
        try:
            result[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            result[key.strip()] = value
    return result


def parse_floats(text: str, option: str, count: int | None = None) -> tuple[float, ...]:
    """``"0.6,0.2,0.2"`` (commas and/or spaces) -> floats; ``count`` numbers exactly when given."""
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise InputError(f"{option} takes comma-separated numbers like 0.8,0.1,0.1, got {text!r}") from None
    if not values or (count is not None and len(values) != count):
        raise InputError(f"{option} takes {count or 'some'} comma-separated numbers, got {text!r}")
    return values


def build_labeler(
    method: str,
    *,
    xc: str | None = None,
    basis: str | None = None,
    charge: int | None = None,
    spin: int | None = None,
    ecut: float | None = None,
    kpts: str | None = None,
    calculator: str | None = None,
    level_of_theory: str | None = None,
    threads: int | None = None,
    params: list[str] | None = None,
):
    """A labeler from command-line options; options left unset keep the method's defaults.

    ``--param key=value`` adds keyword arguments to the method, or, for ``--method ase``, to the ASE
    calculator class named by ``--calculator``.
    """
    from mlpkit.labelers import make_labeler

    extra = _parse_params(params)
    kwargs: dict = {"xc": xc, "basis": basis, "charge": charge, "spin": spin, "ecut": ecut, "threads": threads}
    if kpts is not None:
        try:
            kwargs["kpts"] = [int(k) for k in kpts.replace(",", " ").split()]
        except ValueError:
            raise InputError(f"--kpts must be integers like '2,2,2', got {kpts!r}") from None
    if method.lower() == "ase":
        kwargs.update(calculator=calculator, level_of_theory=level_of_theory, parameters=extra)
    else:
        if calculator or level_of_theory:
            raise InputError("--calculator and --level-of-theory belong to --method ase")
        kwargs.update(extra)
    return make_labeler(method, **{k: v for k, v in kwargs.items() if v is not None})


def sampling_driver(calc: str, params: list[str] | None = None):
    """The driver of ``mlpkit sample``: a labeler (``--calc gfn2 --calc-param ...``), or a potential (``--calc
    chgnet``, ``--calc models/final``; ``--calc-param`` then gives its load options), refused before any MD if it
    cannot be loaded."""
    from mlpkit.sampling.driver import check_driver, is_labeler_name, make_driver

    if is_labeler_name(calc):
        return build_labeler(calc, params=params)
    spec = {"potential": calc, **_parse_params(params)}
    check_driver(spec)
    return make_driver(spec)


def _read_one(structure: str, index: int) -> Atoms:
    from mlpkit.data import read_structures

    images = read_structures(structure)
    try:
        return images[index]
    except IndexError:
        raise InputError(f"{structure} has {len(images)} structure(s); --index {index} is out of range") from None


def _write_extxyz(images: list[Atoms], path: Path) -> None:
    """Write via a temporary file and rename, so an interrupted write never leaves half a file."""
    from ase.io import write

    if not path.parent.exists():
        raise InputError(f"directory {path.parent} for {path} does not exist")
    tmp = path.with_name(path.name + ".part")
    write(tmp, images, format="extxyz")
    os.replace(tmp, path)


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


def _report_sample(images: list[Atoms], path: Path) -> None:
    out.print(
        f"wrote {len(images)} configurations to {path} ({images[0].get_chemical_formula()}, "
        f"source {images[0].info.get('source')})"
    )


# -- sample -------------------------------------------------------------------------------------------------

_STRUCTURE = typer.Option(
    ...,
    "--structure",
    "-s",
    help="Structure file (any format ASE reads), an ASE molecule "
    "name such as H2O or CH3CH2OH (put in a box with 5 Å vacuum), or a periodic box of molecules such as water-box:32 "
    "or CH3OH-box:20@0.79 (g/cm³).",
)
_INDEX = typer.Option(-1, "--index", help="Which structure of a multi-frame file to start from.")
_CALC = typer.Option(
    "gfn2",
    "--calc",
    help="What drives the sampling: a method (gfn2, emt, pyscf, gpaw, ase, ...) or any potential (a pretrained "
    "name such as chgnet or chgnet:r2scan, or a saved model directory).",
)
_CALC_PARAM = typer.Option(
    None, "--calc-param", metavar="KEY=VALUE", help="Option of the --calc method (repeatable: one per option)."
)
_SEED = typer.Option(0, "--seed", help="Random seed (velocities, thermostat noise, displacements).")
_OUT = typer.Option(..., "--out", "-o", help="extxyz file to write.")


@sample_app.command("md")
def sample_md(
    structure: str = _STRUCTURE,
    temperature: float = typer.Option(
        500.0,
        "--temperature",
        "-T",
        help="Temperature (K) of the Maxwell-Boltzmann start and of the Langevin thermostat.",
    ),
    thermostat: str = typer.Option(
        "nve", "--thermostat", help="nve (velocity Verlet), langevin (NVT) or npt (periodic cells: + barostat)."
    ),
    pressure: float = typer.Option(1.0, "--pressure", help="NPT pressure (bar; 1 GPa = 10000 bar)."),
    barostat_time: float = typer.Option(1000.0, "--barostat-time", help="NPT barostat period (fs)."),
    steps: int = typer.Option(500, "--steps", help="MD steps."),
    every: int = typer.Option(10, "--every", help="Keep a snapshot every this many steps."),
    timestep: float = typer.Option(1.0, "--timestep", help="Time step (fs)."),
    friction: float = typer.Option(0.01, "--friction", help="Langevin friction (1/fs)."),
    calc: str = _CALC,
    calc_param: list[str] = _CALC_PARAM,
    seed: int = _SEED,
    index: int = _INDEX,
    out_path: Path = _OUT,
) -> None:
    """MD snapshots from a Maxwell-Boltzmann start (centre-of-mass motion and rotation removed)."""
    from mlpkit.sampling import md_snapshots

    atoms = _read_one(structure, index)
    labeler = sampling_driver(calc, calc_param)
    labeler.check(atoms)
    if not out_path.parent.exists():
        raise InputError(f"directory {out_path.parent} for {out_path} does not exist")
    frames = md_snapshots(
        atoms,
        labeler,
        temperature=temperature,
        steps=steps,
        every=every,
        thermostat=thermostat,
        timestep=timestep,
        friction=friction,
        pressure=pressure,
        barostat_time=barostat_time,
        seed=seed,
        progress=True,
    )
    for f in frames:
        f.info["driver"] = labeler.method
    _write_extxyz(frames, out_path)
    _report_sample(frames, out_path)


@sample_app.command("rattle")
def sample_rattle(
    structure: str = _STRUCTURE,
    n: int = typer.Option(50, "--n", "-n", help="Number of configurations."),
    stdev: float = typer.Option(0.05, "--stdev", help="Standard deviation of each displacement component (Å)."),
    seed: int = _SEED,
    index: int = _INDEX,
    out_path: Path = _OUT,
) -> None:
    """Random Gaussian displacements of every atom."""
    from mlpkit.sampling import rattle

    atoms = _read_one(structure, index)
    if not out_path.parent.exists():
        raise InputError(f"directory {out_path.parent} for {out_path} does not exist")
    frames = rattle(atoms, n, stdev=stdev, seed=seed)
    _write_extxyz(frames, out_path)
    _report_sample(frames, out_path)


@sample_app.command("normal-modes")
def sample_normal_modes(
    structure: str = _STRUCTURE,
    n: int = typer.Option(50, "--n", "-n", help="Number of configurations."),
    temperature: float = typer.Option(
        300.0, "--temperature", "-T", help="Temperature (K) of the classical Boltzmann distribution of mode amplitudes."
    ),
    calc: str = _CALC,
    calc_param: list[str] = _CALC_PARAM,
    relax: bool = typer.Option(False, "--relax", help="Relax the structure with --calc first (BFGS, fmax 0.01 eV/Å)."),
    seed: int = _SEED,
    index: int = _INDEX,
    out_path: Path = _OUT,
) -> None:
    """Displacements along the harmonic normal modes of the structure (a minimum of --calc)."""
    from mlpkit.sampling import harmonic_modes
    from mlpkit.sampling.normal_modes import normal_mode_sampling

    atoms = _read_one(structure, index)
    labeler = sampling_driver(calc, calc_param)
    labeler.check(atoms)
    if not out_path.parent.exists():
        raise InputError(f"directory {out_path.parent} for {out_path} does not exist")
    if relax:
        from ase.optimize import BFGS

        atoms = atoms.copy()
        atoms.calc = labeler.calculator()
        BFGS(atoms, logfile=None).run(fmax=0.01, steps=500)
        atoms.calc = None
    modes = harmonic_modes(atoms, labeler)
    out.print(
        "harmonic wavenumbers (cm⁻¹): "
        + ", ".join(f"{w:.1f}" for w in modes.frequencies_cm)
        + (
            f"; skipped (soft/imaginary): {', '.join(f'{w:.1f}' for w in modes.skipped_cm)}"
            if len(modes.skipped_cm)
            else ""
        )
    )
    frames = normal_mode_sampling(atoms, labeler, n, temperature, seed=seed)
    _write_extxyz(frames, out_path)
    _report_sample(frames, out_path)


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
