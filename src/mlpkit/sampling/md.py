"""MD snapshots: Maxwell-Boltzmann start, velocity Verlet (NVE), Langevin (NVT) or Langevin with a Langevin-Hoover
barostat (NPT, periodic cells), a frame every few steps; and :func:`make_integrator`, the one place an ensemble name
becomes an ASE integrator (also used by :func:`mlpkit.md.dynamics.run_md`).

NPT uses ASE's :class:`~ase.md.langevinbaoab.LangevinBAOAB` (BAOAB Langevin for the atoms, Quigley-Probert
Langevin-Hoover for the cell; ``hydrostatic=True`` scales the cell isotropically). Of ASE 3.29's barostats it is the
one that samples the NPT ensemble (volume fluctuations included; Berendsen's ``NPTBerendsen`` suppresses them), is
stochastic and seeded like the NVT Langevin (the deterministic Nosé-Hoover-chain ``IsotropicMTKNPT``/``MTKNPT`` can
equilibrate slowly from a freshly packed box, and ASE's documentation advises against Melchionna's ``NPT`` for small
systems), and offers both isotropic and fully flexible cells. Pressure is given in bar; the stress comes from the
calculator (``get_stress``), so NPT needs one that computes stress (GFN2-xTB via tblite, GPAW, EMT, a potential with
stress).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator

from mlpkit.errors import InputError, LabelFailure

#: thermostats of :func:`md_snapshots`: 'nvt' is the same as 'langevin'; 'npt' adds the barostat
THERMOSTATS = ("nve", "langevin", "nvt", "npt")
#: ensembles of :func:`make_integrator`
ENSEMBLES = ("nve", "nvt", "npt")
#: 1 bar in eV/Å³ (1e5 Pa); 1 GPa = 1e4 bar
BAR = units.bar


def make_integrator(
    atoms: Atoms,
    *,
    ensemble: str,
    timestep: float,
    temperature: float,
    friction: float = 0.01,
    pressure: float = 1.0,
    barostat_time: float = 1000.0,
    isotropic: bool = True,
    rng: np.random.Generator,
):
    """The ASE integrator of an ensemble, attached to ``atoms`` (which carries its calculator).

    ensemble:      'nve' (velocity Verlet), 'nvt' (Langevin, centre of mass fixed with ``FixCom``) or 'npt'
                   (:class:`~ase.md.langevinbaoab.LangevinBAOAB`: Langevin atoms, Langevin-Hoover cell; periodic
                   cells only)
    timestep:      fs
    temperature:   K
    friction:      1/fs, of the Langevin thermostat (NPT: the atoms' Langevin time constant is ``1/friction`` fs)
    pressure:      bar (NPT; 1 GPa = 10,000 bar), the target including the kinetic (ideal-gas) part
    barostat_time: fs, the cell's fluctuation period and Langevin time constant (NPT)
    isotropic:     NPT scales the cell uniformly (shape kept, liquids); False lets all six cell degrees fluctuate
    rng:           the seeded generator of the thermostat's noise
    """
    from ase.md.langevin import Langevin
    from ase.md.verlet import VelocityVerlet

    if ensemble not in ENSEMBLES:
        raise InputError(f"ensemble must be one of {ENSEMBLES}, not {ensemble!r}")
    if ensemble == "nve":
        return VelocityVerlet(atoms, timestep * units.fs)
    if ensemble == "nvt":
        from ase.constraints import FixCom

        # ASE's recommended way to keep the centre of mass still under Langevin noise (fixcm=True is biased
        # for small systems such as one molecule).
        atoms.set_constraint(FixCom())
        return Langevin(
            atoms, timestep * units.fs, temperature_K=temperature, friction=friction / units.fs, fixcm=False, rng=rng
        )
    import warnings

    from ase.md.langevinbaoab import LangevinBAOAB

    if not atoms.pbc.all():
        raise InputError("NPT needs a periodic cell (pbc in all three directions); use 'nvt' for a molecule")
    if friction <= 0 or barostat_time <= 0 or not np.isfinite(pressure):
        raise InputError(
            f"NPT needs friction > 0, barostat_time > 0 fs and a finite pressure (bar), got "
            f"{friction}, {barostat_time}, {pressure}"
        )
    with warnings.catch_warnings():  # "Using heuristic P_mass ...": the documented default, chosen on purpose
        warnings.simplefilter("ignore", UserWarning)
        return LangevinBAOAB(
            atoms,
            timestep * units.fs,
            temperature_K=temperature,
            # ASE's externalstress is a stress (positive in tension): a pressure p is the stress -p
            externalstress=-pressure * BAR,
            hydrostatic=isotropic,
            T_tau=units.fs / friction,
            P_tau=barostat_time * units.fs,
            rng=rng,
        )


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
    pressure: float = 1.0,
    barostat_time: float = 1000.0,
    isotropic: bool = True,
    seed: int = 0,
    progress: bool = False,
) -> list[Atoms]:
    """Run MD from a Maxwell-Boltzmann start and return a snapshot every ``every`` steps.

    Velocities are drawn at ``temperature`` (K) with a seeded generator; the centre-of-mass momentum and,
    for non-periodic systems, the overall rotation are removed (temperature preserved), as in the source
    material's water protocol. ``thermostat="nve"`` integrates with velocity Verlet; ``"langevin"`` (or ``"nvt"``)
    with ASE's Langevin at ``temperature`` and ``friction`` (1/fs); ``"npt"`` (periodic cells) also lets the cell
    fluctuate at ``pressure`` (bar) with a barostat of period ``barostat_time`` (fs), isotropically unless
    ``isotropic=False`` (see :func:`make_integrator`), so the frames' densities vary. ``timestep`` is in fs.

    Returns ``steps // every`` frames (after steps ``every, 2*every, ..., steps``; the start structure
    itself is not repeated). Each frame is a bare copy (positions, momenta, cell, pbc; no calculator)
    with ``info``: ``source`` (``md-500K-nve``), ``temperature`` (K), ``step``, ``time_fs``; NPT frames also
    ``pressure`` (bar, the target) and ``density`` (g/cm³, of the frame's cell).
    """
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

    from mlpkit.data.boxes import density_of

    thermostat = thermostat.lower()
    if thermostat not in THERMOSTATS:
        raise InputError(f"thermostat must be one of {THERMOSTATS}, not {thermostat!r}")
    if steps < 1 or every < 1 or every > steps:
        raise InputError(f"need steps >= every >= 1, got steps={steps}, every={every}")
    ensemble = "nvt" if thermostat == "langevin" else thermostat
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

    dyn = make_integrator(
        md_atoms,
        ensemble=ensemble,
        timestep=timestep,
        temperature=temperature,
        friction=friction,
        pressure=pressure,
        barostat_time=barostat_time,
        isotropic=isotropic,
        rng=rng,
    )
    # the NVT spelling of the source stays 'langevin' (existing datasets carry it); NPT names its pressure
    source = f"md-{temperature:g}K-{'langevin' if ensemble == 'nvt' else ensemble}"
    if ensemble == "npt":
        source += f"-{pressure:g}bar"
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
            thermostat="langevin" if ensemble == "nvt" else ensemble,
            seed=int(seed),
        )
        if ensemble == "npt":
            frame.info.update(pressure=float(pressure), density=density_of(frame))
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


def equilibrate_box(
    atoms: Atoms,
    calculator,
    *,
    temperature: float,
    relax_steps: int = 50,
    fmax: float = 0.5,
    nvt_steps: int = 0,
    timestep: float = 0.5,
    friction: float = 0.01,
    seed: int = 0,
) -> Atoms:
    """A freshly built structure (a packed box: contacts down to 1.6 Å, kbar of pressure) made ready for sampling.

    First FIRE on the positions (cell fixed) until the largest force is below ``fmax`` eV/Å or ``relax_steps``
    steps have run, which removes the close contacts; then ``nvt_steps`` of Langevin MD at ``temperature`` K
    (``timestep`` fs, ``friction`` 1/fs, seeded) so a barostat switched on afterwards starts near equilibrium instead
    of overshooting (docs/benchmarks/liquid-water.md). Returns a bare copy (positions, momenta, cell) with
    ``info["equilibration"]`` saying what ran; ``atoms`` is not changed.
    """
    from ase.optimize import FIRE

    if relax_steps < 0 or nvt_steps < 0 or fmax <= 0:
        raise InputError(f"need relax_steps >= 0, nvt_steps >= 0, fmax > 0 (got {relax_steps}, {nvt_steps}, {fmax})")
    work = atoms.copy()
    work.calc = as_calculator(calculator)
    relaxed = 0
    if relax_steps:
        opt = FIRE(work, logfile=None)
        opt.run(fmax=fmax, steps=relax_steps)
        relaxed = int(opt.nsteps)
    if nvt_steps:
        from ase.md.velocitydistribution import Stationary, thermalize_momenta

        rng = np.random.default_rng(seed)
        thermalize_momenta(work, temperature, rng=rng)
        Stationary(work)
        dyn = make_integrator(
            work, ensemble="nvt", timestep=timestep, temperature=temperature, friction=friction, rng=rng
        )
        dyn.run(nvt_steps)
        work.set_constraint()
    out = Atoms(numbers=work.numbers, positions=work.positions, cell=work.cell, pbc=work.pbc,
                momenta=work.get_momenta())  # fmt: skip
    out.info.update(atoms.info)
    out.info["equilibration"] = f"FIRE {relaxed} steps (fmax {fmax:g} eV/Å), NVT {nvt_steps} steps at {temperature:g} K"
    return out
