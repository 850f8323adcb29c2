"""``mlpkit label``: label configurations with a reference method on Dask, each result saved as it arrives.

Exit codes: 0 when done (single failures are data: recorded with their reason), 1 when every calculation of the
job failed (a set-up problem: the first reason is printed in full), 2 for bad input (nothing written), 130 on
Ctrl-C (the labels finished so far are saved; the same command continues).
"""

from __future__ import annotations

from pathlib import Path

import typer
from ase import Atoms
from rich.console import Console

from mlpkit.cli import app
from mlpkit.cli.data_cmds import _open_db, _summary_tables, out
from mlpkit.cli.labeler_options import build_labeler
from mlpkit.errors import InputError


@app.command("label")
def label(
    db: str = typer.Option(..., "--db", help="Dataset store: SQLite file (created if missing) or postgresql:// URL."),
    input_path: str = typer.Option(
        None,
        "--input",
        "-i",
        help="Configurations to add and label (any format ASE "
        "reads). Without it, the rows still pending in --db are labelled.",
    ),
    method: str = typer.Option("pyscf", "--method", "-m", help="Reference method: pyscf, gfn2, gpaw, ase, emt."),
    xc: str = typer.Option(None, "--xc", help="Functional (pyscf, gpaw)."),
    basis: str = typer.Option(None, "--basis", help="Basis set (pyscf)."),
    charge: int = typer.Option(None, "--charge", help="Total charge."),
    spin: int = typer.Option(None, "--spin", help="2S, the number of unpaired electrons."),
    ecut: float = typer.Option(None, "--ecut", help="Plane-wave cut-off in eV (gpaw)."),
    kpts: str = typer.Option(None, "--kpts", metavar="N1,N2,N3", help="k-point grid, e.g. 2,2,2 (gpaw)."),
    calculator: str = typer.Option(
        None, "--calculator", help="ASE calculator class for --method ase, e.g. ase.calculators.espresso:Espresso."
    ),
    level_of_theory: str = typer.Option(None, "--level-of-theory", help="Name recorded for --method ase data."),
    param: list[str] = typer.Option(
        None,
        "--param",
        "-p",
        metavar="KEY=VALUE",
        help="Option passed to the method (for --method ase: to the calculator); repeatable, one per option.",
    ),
    threads: int = typer.Option(None, "--threads", help="OpenMP threads per calculation (pyscf)."),
    workers: int = typer.Option(2, "--workers", "-w", help="Local Dask worker processes (0: no Dask, in-process)."),
    scheduler: str = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler (tcp://host:8786)."),
    cluster_config: Path = typer.Option(
        None,
        "--cluster-config",
        help="YAML for a dask-jobqueue cluster (type: slurm|pbs|..., jobs, cores, memory, walltime, ...).",
    ),
    source: str = typer.Option(
        None,
        "--source",
        help="Source tag for new rows (default: each frame's info 'source', else the input file name).",
    ),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Turn this method's failed rows back into pending and try them again."
    ),
) -> None:
    """Label configurations with a reference method on Dask; each result is saved the moment it finishes."""
    from mlpkit.execution import label_configurations, label_pending

    labeler = build_labeler(
        method,
        xc=xc,
        basis=basis,
        charge=charge,
        spin=spin,
        ecut=ecut,
        kpts=kpts,
        calculator=calculator,
        level_of_theory=level_of_theory,
        threads=threads,
        params=param,
    )
    images: list[Atoms] = []
    if input_path is not None:
        from mlpkit.data import read_structures

        images = read_structures(input_path)
        for i, atoms in enumerate(images):
            try:
                labeler.check(atoms)
            except InputError as exc:
                raise type(exc)(f"{input_path} frame {i}: {exc}") from exc
    if cluster_config is not None:
        from mlpkit.execution import load_cluster_config

        load_cluster_config(cluster_config)  # parse errors before touching the store
    dataset = _open_db(db, must_exist=input_path is None)
    if retry_failed:
        n = dataset.reset_failed(labeler.method)
        out.print(f"{n} failed row(s) of {labeler.method} set back to pending")
    labelled_before = dataset.count(status="labelled", method=labeler.method)
    try:
        if images:
            default_source = source or Path(input_path).stem
            report = label_configurations(
                images,
                labeler,
                dataset,
                source=source,
                default_source=default_source,
                workers=workers,
                scheduler=scheduler,
                cluster_config=cluster_config,
                progress=True,
            )
        else:
            report = label_pending(
                dataset, labeler, workers=workers, scheduler=scheduler, cluster_config=cluster_config, progress=True
            )
    except KeyboardInterrupt:
        from mlpkit.cli import Interrupted

        saved = dataset.count(status="labelled", method=labeler.method) - labelled_before
        raise Interrupted(f"{saved} label(s) saved to {db}") from None
    per_label = f", {report.seconds / max(1, report.labelled + report.failed):.2f} s per configuration"
    out.print(
        f"{labeler.method}: {report.labelled} labelled, "
        f"{'[red]' if report.failed else ''}{report.failed} failed{'[/]' if report.failed else ''}"
        f"{f', {report.duplicates} duplicate(s) skipped' if report.duplicates else ''} "
        f"in {report.seconds:.1f} s ({report.workers}{per_label if report.pending_before else ''})"
    )
    _summary_tables(dataset)
    if report.all_failed:
        # every calculation failing is a set-up problem (code not installed or configured), not bad data:
        # say so with the reason in full and exit non-zero so scripts and pipelines stop here
        err = Console(stderr=True, soft_wrap=True)
        err.print(
            f"[bold red]error:[/] all {report.failed} calculation(s) with {labeler.method} failed; the first reason:",
            highlight=False,
        )
        err.print(report.first_error or "unknown error", markup=False, highlight=False)
        err.print(
            "fix the method's set-up (check it with one configuration: --workers 0), then run the same command "
            "with --retry-failed",
            highlight=False,
        )
        raise typer.Exit(1)
