"""``mlpkit sample``: candidate configurations from MD snapshots, rattling or normal-mode sampling, written to extxyz.

Every command validates all of its input (structure, elements, geometry, driver) before it writes anything, so a bad
input gives one message, exit code 2, and no file.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from ase import Atoms
from rich.console import Console

from mlpkit.cli import app
from mlpkit.cli.labeler_options import build_labeler, parse_params
from mlpkit.errors import InputError

out = Console()  # results on stdout; progress bars and errors go to stderr

sample_app = typer.Typer(
    help="Make candidate configurations: MD snapshots, rattling, normal-mode sampling.", no_args_is_help=True
)
app.add_typer(sample_app, name="sample")


def sampling_driver(calc: str, params: list[str] | None = None):
    """The driver of ``mlpkit sample``: a labeler (``--calc gfn2 --calc-param ...``), or a potential (``--calc
    chgnet``, ``--calc models/final``; ``--calc-param`` then gives its load options), refused before any MD if it
    cannot be loaded."""
    from mlpkit.sampling.driver import check_driver, is_labeler_name, make_driver

    if is_labeler_name(calc):
        return build_labeler(calc, params=params)
    spec = {"potential": calc, **parse_params(params)}
    check_driver(spec)
    return make_driver(spec)


def _read_one(structure: str, index: int, out_path: Path | None = None) -> Atoms:
    """Structure ``index`` of ``structure``; with ``out_path``, first check that its directory exists (before any
    work is done for it)."""
    from mlpkit.data import read_structures

    if out_path is not None and not out_path.parent.exists():
        raise InputError(f"directory {out_path.parent} for {out_path} does not exist")
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

    atoms = _read_one(structure, index, out_path)
    labeler = sampling_driver(calc, calc_param)
    labeler.check(atoms)
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

    atoms = _read_one(structure, index, out_path)
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

    atoms = _read_one(structure, index, out_path)
    labeler = sampling_driver(calc, calc_param)
    labeler.check(atoms)
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
