"""``mlpkit init`` and ``mlpkit run``: one configuration file, one command, the whole loop.

::

    mlpkit init water --structure H2O --method pyscf   # water/mlpkit.yaml, every default written out and commented
    mlpkit run water/mlpkit.yaml                        # sample → label → train → validate → learn → MD → report
    mlpkit run water/mlpkit.yaml                        # again after a crash or Ctrl-C: continues where it stopped
    mlpkit check water/mlpkit.yaml                      # validate the file only
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from mlpkit.cli import app
from mlpkit.errors import InputError

err = Console(stderr=True)


def _parse_options(items: list[str] | None) -> dict:
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--option must look like key=value, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


@app.command("init")
def init_cmd(
    directory: Path = typer.Argument(..., help="project directory (created); the file is DIRECTORY/mlpkit.yaml"),
    structure: str = typer.Option(
        "H2O",
        "--structure",
        "-s",
        help="ASE molecule name (H2O), a periodic box of molecules (water-box:32, CH3OH-box:20@0.79 g/cm³) or a "
        "structure file (xyz, POSCAR, CIF, ...)",
    ),
    method: str = typer.Option("pyscf", "--method", "-m", help="reference method: pyscf, gfn2, gpaw, ase, emt"),
    option: list[str] = typer.Option(
        None, "--option", "-o", help="method option key=value (repeatable), e.g. -o xc=PBE -o basis=def2-TZVP"
    ),
    name: str | None = typer.Option(None, "--name", help="project name (default: the directory name)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing mlpkit.yaml"),
) -> None:
    """Write DIRECTORY/mlpkit.yaml for a structure and reference method, with every key written out and documented;
    a periodic structure (box spec or periodic cell file) gets condensed-phase settings (NPT sampling, exploration
    and production, stress in the fit, domain 300-400 K)."""
    from mlpkit.config import init_config

    path = init_config(
        directory, structure=structure, method=method, options=_parse_options(option), name=name, force=force
    )
    typer.echo(f"wrote {path}")
    typer.echo(f"next: edit it if you like, then run: mlpkit run {path}")


@app.command("check")
def check_cmd(
    config: Path = typer.Argument(..., help="a project file (mlpkit.yaml) or an active-learning file"),
) -> None:
    """Validate a configuration without running anything: a project file (for `mlpkit run`) or an active-learning
    file (for `mlpkit learn`); every problem at once, with its key path and a hint."""
    import yaml

    from mlpkit.config import ProjectConfig
    from mlpkit.config.active_learning import ActiveLearningConfig
    from mlpkit.config.base import file_kind

    path = config / "mlpkit.yaml" if config.is_dir() else config
    try:
        data = yaml.safe_load(path.read_text()) if path.is_file() else None
    except yaml.YAMLError:
        data = None  # the loader below reports the YAML error with its position
    if file_kind(data) == "learn":
        al = ActiveLearningConfig.from_yaml(path)
        _probe_external(dict(al.reference), "reference")
        typer.echo(
            f"{path}: OK (active learning {al.name!r}, {al.structure}, {al.reference['method']}; "
            f"run it with: mlpkit learn {path})"
        )
        return
    cfg = ProjectConfig.from_yaml(config)
    _probe_external({"method": cfg.reference.method, **cfg.reference.options}, "reference")
    structure = _structure_text(cfg)
    typer.echo(
        f"{config}: OK (project {cfg.project.name!r}, {structure}, {cfg.reference.method}; "
        f"run directory {cfg.run_dir}; run it with: mlpkit run {config})"
    )


def _structure_text(cfg) -> str:
    """The structure as the run will build it: a box spec is packed now (a density too high to pack fails here, not
    after the run started), and named with its atoms, cell and density."""
    from mlpkit.data.boxes import density_of, is_box_spec

    if not is_box_spec(cfg.system.structure):
        return cfg.system.structure
    atoms = cfg.structure_atoms()
    edges = " x ".join(f"{x:.2f}" for x in atoms.cell.lengths())
    return f"{cfg.system.structure}: {len(atoms)} atoms, periodic {edges} Å, {density_of(atoms):.3f} g/cm³"


def _probe_external(spec: dict, where: str) -> None:
    """For a code outside mlpkit's dependencies (an ASE calculator, GPAW): one tiny calculation, so a missing binary,
    pseudopotential or setting is found now, not after the sampling."""
    from mlpkit.errors import InputError
    from mlpkit.labelers.probe import is_external, probe_method

    if is_external(spec):
        problem = probe_method(spec)
        if problem:
            raise InputError(f"{where}: a test calculation failed: {problem}")


@app.command("run")
def run_cmd(
    config: Path = typer.Argument(..., help="project configuration (mlpkit.yaml, or its directory)"),
    stage: list[str] = typer.Option(
        None,
        "--stage",
        help="run only this stage (repeatable): sample, label, train, validate, learn, production, speed, compare, "
        "report",
    ),
    restart_from: str | None = typer.Option(
        None, "--restart-from", help="forget this stage and every later one, then run them again"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output; print only the report path"),
) -> None:
    """Run the whole loop: sample → label → train → validate → learn → production MD → speed → report.

    Resumable: run the same command again after a crash or Ctrl-C and finished stages are skipped; no label is
    computed twice. Changing a section of the configuration reruns the stages that depend on it.
    """
    from mlpkit.workflows.project.runner import run_project

    summary = run_project(
        config, stages=tuple(stage) if stage else None, restart_from=restart_from, progress=not quiet, console=err
    )
    if summary.get("report"):
        typer.echo(summary["report"])
    if not summary.get("complete"):
        raise typer.Exit(1 if stage else 3)
