"""MD snapshots: Maxwell-Boltzmann start, velocity-Verlet (NVE) or Langevin (NVT), a frame every few steps."""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator

from mlpkit.errors import InputError, LabelFailure

THERMOSTATS = ("nve", "langevin")


def as_calculator(calculator) -> Calculator:
    """An ASE calculator from an ASE calculator, an mlpkit labeler, a potential driver
    (:class:`mlpkit.sampling.driver.PotentialDriver`), or a driver spec (``"gfn2"``, ``"chgnet"``, a model
    directory, ``{"method": ...}``, ``{"potential": ...}``)."""
    from mlpkit.labelers import Labeler
    from mlpkit.sampling.driver import PotentialDriver, make_driver

    if isinstance(calculator, (str, dict)):
        calculator = make_driver(calculator)
    if isinstance(calculator, (Labeler, PotentialDriver)):
        return calculator.calculator()
    if not isinstance(calculator, Calculator) and not hasattr(calculator, "get_forces"):
        raise InputError(f"need an ASE calculator, an mlpkit labeler or a potential driver, got {calculator!r}")
    return calculator


def md_snapshots(
    atoms: Atoms,
    calculator,
    *,
    temperature: float,
    steps: int,
    every: int,
    thermostat: str = "nve",
    timestep: float = 1.0,
    friction: float = 0.01,
    seed: int = 0,
    progress: bool = False,
) -> list[Atoms]:
    """Run MD from a Maxwell-Boltzmann start and return a snapshot every ``every`` steps.

    Velocities are drawn at ``temperature`` (K) with a seeded generator; the centre-of-mass momentum and,
    for non-periodic systems, the overall rotation are removed (temperature preserved), as in the source
    material's water protocol. ``thermostat="nve"`` integrates with velocity Verlet; ``"langevin"`` with
    ASE's Langevin at ``temperature`` and ``friction`` (1/fs). ``timestep`` is in fs.

    Returns ``steps // every`` frames (after steps ``every, 2*every, ..., steps``; the start structure
    itself is not repeated). Each frame is a bare copy (positions, momenta, cell, pbc; no calculator)
    with ``info``: ``source`` (``md-500K-nve``), ``temperature`` (K), ``step``, ``time_fs``.
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    thermostat = thermostat.lower()
    if thermostat not in THERMOSTATS:
        raise InputError(f"thermostat must be one of {THERMOSTATS}, not {thermostat!r}")
    if steps < 1 or every < 1 or every > steps:
        raise InputError(f"need steps >= every >= 1, got steps={steps}, every={every}")
    if temperature < 0 or timestep <= 0 or friction < 0:
        raise InputError(
            f"need temperature >= 0 K, timestep > 0 fs, friction >= 0 (got {temperature}, {timestep}, {friction})"
        )

    md_atoms = atoms.copy()
    md_atoms.calc = as_calculator(calculator)
    rng = np.random.default_rng(seed)
    thermalize_momenta(md_atoms, temperature, rng=rng)  # Maxwell-Boltzmann momenta
    Stationary(md_atoms)
    if not md_atoms.pbc.any() and len(md_atoms) > 1:
        ZeroRotation(md_atoms)

    if thermostat == "nve":
        dyn = VelocityVerlet(md_atoms, timestep * units.fs)
    else:
        from ase.constraints import FixCom

        # ASE's recommended way to keep the centre of mass still under Langevin noise (fixcm=True is biased
        # for small systems such as one molecule).
        md_atoms.set_constraint(FixCom())
        dyn = Langevin(
            md_atoms, timestep * units.fs, temperature_K=temperature, friction=friction / units.fs, fixcm=False, rng=rng
        )

    source = f"md-{temperature:g}K-{thermostat}"
    frames: list[Atoms] = []

    def snapshot() -> None:
        step = dyn.nsteps
        if step == 0 or step % every:
            return
        forces = md_atoms.get_forces()
        if not np.all(np.isfinite(forces)) or not np.all(np.isfinite(md_atoms.positions)):
            raise LabelFailure(f"MD became non-finite at step {step}; use a smaller timestep or a lower temperature")
        frame = Atoms(
            numbers=md_atoms.numbers,
            positions=md_atoms.positions,
            cell=md_atoms.cell,
            pbc=md_atoms.pbc,
            momenta=md_atoms.get_momenta(),
        )
        frame.info.update(
            source=source,
            temperature=float(temperature),
            step=int(step),
            time_fs=float(step * timestep),
            thermostat=thermostat,
            seed=int(seed),
        )
        frames.append(frame)

    dyn.attach(snapshot, interval=1)
    if progress:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"MD {source}", total=steps)
            dyn.attach(lambda: bar.update(task, completed=dyn.nsteps), interval=1)
            dyn.run(steps)
    else:
        dyn.run(steps)
    return frames
