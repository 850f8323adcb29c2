"""Molecular dynamics with any ASE calculator (an mlpkit potential or a reference method), watched.

:func:`run_md` runs Langevin (NVT) or velocity-Verlet (NVE) dynamics with ASE's integrators, records a frame
every ``interval`` steps (optionally written to an extxyz or ASE ``.traj`` file as it goes), and stops early when

* the dynamics go unphysical: a non-finite energy, force or position; a kinetic energy beyond the thermal bound
  plus the potential energy the start has released (:mod:`mlpkit.md.runaway`: a hot or distorted start given
  cooler velocities heats a small molecule far past 5x the target without anything being wrong), or above an
  explicit ``max_temperature``; two atoms closer than 0.5 Å; or, for a molecule (non-periodic system), a bond
  broken / a fragment flying off, unless ``allow_bond_breaking``;
* an :class:`UncertaintyWatchdog` sees the model's uncertainty pass its ``stop`` bound.

Frames carry no calculator (so predicted numbers are never mistaken for reference labels): their ``info``
holds ``step``, ``time_fs``, ``temperature`` (K), ``mlp_energy`` (eV) and, for uncertainty-aware potentials,
``energy_std`` (eV) and ``max_force_std`` (eV/Å, raw) and ``uncertainty`` (calibrated = scale·raw score)
(:mod:`mlpkit.md.frames`; the watchdog is :mod:`mlpkit.md.watchdog`, its names re-exported here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError
from mlpkit.md.frames import TrajectoryWriter, raw_uncertainty, step_frame
from mlpkit.md.runaway import RunawayCheck
from mlpkit.md.temperature import kinetic_dof
from mlpkit.md.watchdog import UncertaintyWatchdog

#: Two atoms closer than this (Å) means the dynamics collapsed (same bound as data.structures' check).
MIN_DISTANCE = 0.5
#: A bond counts as broken when the atoms are farther apart than this multiple of the sum of their natural
#: (covalent) radii. ASE's natural cutoffs already sit ~0.2 Å above typical bond lengths; 1.5× of that is far
#: past any thermal vibration (an O-H bond at 1000 K stretches by < 0.3 Å).
BOND_FACTOR = 1.5

__all__ = ["BOND_FACTOR", "MIN_DISTANCE", "MDResult", "UncertaintyWatchdog", "raw_uncertainty", "run_md"]


@dataclass
class MDResult:
    """What :func:`run_md` did.

    frames:          recorded configurations (every ``interval`` steps, plus the last one before a stop)
    stopped_because: '' when all steps ran, else the reason ('uncertainty 0.41 eV/Å >= stop bound 0.3',
                     'temperature 3120 K > 2500 K', 'bond broken', 'non-finite forces', ...)
    steps_done:      MD steps completed
    uncertain_frames: steps the watchdog flagged (above its warn bound), with their uncertainty in info
    temperatures:    (steps_done,) K, instantaneous temperature of every step
    uncertainties:   (steps_done,) eV/Å, calibrated uncertainty of every step (empty without a watchdog/σ)
    n_dof, target_temperature, ensemble, friction: what :meth:`temperature_summary` needs (ASE's degrees of
                     freedom, K, 'nvt'/'nve'/'npt', 1/fs)
    """

    frames: list[Atoms]
    stopped_because: str = ""
    steps_done: int = 0
    uncertain_frames: list[Atoms] = field(default_factory=list)
    temperatures: np.ndarray = field(default_factory=lambda: np.zeros(0))
    uncertainties: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seconds: float = 0.0
    n_dof: int = 0
    target_temperature: float | None = None
    ensemble: str = "nvt"
    friction: float | None = None

    def temperature_summary(self):
        """Mean temperature with its standard error and the expected fluctuation, in words too
        (:func:`mlpkit.md.temperature.temperature_summary`); None before any step."""
        from mlpkit.md.temperature import temperature_summary

        if not len(self.temperatures) or self.n_dof < 1:
            return None
        n_atoms = len(self.frames[0]) if self.frames else None
        canonical = self.ensemble in ("nvt", "npt")  # both Langevin-thermostatted: canonical kinetic energy
        return temperature_summary(
            self.temperatures,
            n_dof=self.n_dof,
            target=self.target_temperature,
            ensemble="nvt" if canonical else self.ensemble,
            friction=self.friction if canonical else None,
            n_atoms=n_atoms,
        )

    @property
    def completed(self) -> bool:
        return not self.stopped_because

    @property
    def unphysical(self) -> bool:
        return bool(self.stopped_because) and not self.stopped_because.startswith("uncertainty")


class _Stop(Exception):
    """Ends a run; ``physical=False`` when the configuration reached is not one to keep (collapsed atoms)."""

    def __init__(self, reason: str, physical: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.physical = physical


def _bond_graph_components(atoms: Atoms) -> tuple[int, np.ndarray]:
    """(number of connected fragments, labels) using natural cutoffs × BOND_FACTOR."""
    from ase.neighborlist import natural_cutoffs, neighbor_list
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    cut = np.asarray(natural_cutoffs(atoms, mult=BOND_FACTOR))
    i, j = neighbor_list("ij", atoms, cut, self_interaction=False)
    n = len(atoms)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)


def _min_distance(atoms: Atoms) -> float:
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, MIN_DISTANCE, self_interaction=False)
    return float(d.min()) if len(d) else np.inf


def run_md(
    atoms: Atoms,
    calculator,
    *,
    ensemble: str = "nvt",
    temperature: float,
    timestep: float = 0.5,
    steps: int,
    friction: float = 0.01,
    pressure: float = 1.0,
    barostat_time: float = 1000.0,
    isotropic: bool = True,
    interval: int = 10,
    seed: int = 0,
    trajectory: str | os.PathLike | None = None,
    watchdog: UncertaintyWatchdog | None = None,
    progress: bool = False,
    max_temperature: float | None = None,
    allow_bond_breaking: bool = False,
    initial_velocities: bool = True,
) -> MDResult:
    """Run MD from ``atoms`` (not modified) with ``calculator``.

    ensemble:     'nvt' (Langevin, ``friction`` in 1/fs), 'nve' (velocity Verlet) or 'npt' (periodic cells:
                  Langevin + Langevin-Hoover barostat at ``pressure`` bar, period ``barostat_time`` fs, ``isotropic``
                  cell scaling; :func:`mlpkit.sampling.md.make_integrator`); frames then carry ``density`` g/cm³
    temperature:  K; target of the thermostat, and of the Maxwell-Boltzmann initial velocities
    timestep:     fs
    steps:        number of MD steps; a frame is recorded every ``interval`` steps
    seed:         seeds the initial velocities and the Langevin noise
    trajectory:   path ending in .extxyz/.xyz (appended frame by frame) or .traj (ASE trajectory)
    watchdog:     an :class:`UncertaintyWatchdog` (needs a calculator reporting ``max_force_std``)
    max_temperature: K; stop when the instantaneous temperature passes it. Default None: stop when the kinetic
                  energy passes :class:`mlpkit.md.runaway.RunawayCheck`'s bound (thermal tail at ``temperature``
                  for the system's degrees of freedom, at least 5x, plus the potential energy released since step 0)
    allow_bond_breaking: don't treat a change of the molecular bond graph as unphysical (reactive systems)
    initial_velocities: draw Maxwell-Boltzmann velocities (centre-of-mass motion and, for molecules,
                  rotation removed); otherwise keep the momenta ``atoms`` carries
    """
    import time

    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

    from mlpkit.data.boxes import density_of
    from mlpkit.sampling.md import ENSEMBLES, make_integrator

    if ensemble not in ENSEMBLES:
        raise InputError(f"ensemble must be one of {ENSEMBLES}, not {ensemble!r}")
    if steps < 0 or interval < 1:
        raise InputError(f"need steps >= 0 and interval >= 1, got steps={steps}, interval={interval}")
    if timestep <= 0 or temperature < 0 or friction < 0:
        raise InputError(
            f"need timestep > 0, temperature >= 0, friction >= 0 (got {timestep}, {temperature}, {friction})"
        )
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    atoms.calc = calculator
    molecule = not atoms.pbc.any()
    if initial_velocities:
        thermalize_momenta(atoms, temperature, rng=rng)
        Stationary(atoms)
        if molecule and len(atoms) > 1:
            ZeroRotation(atoms)
    dyn = make_integrator(
        atoms,
        ensemble=ensemble,
        timestep=timestep,
        temperature=temperature,
        friction=friction,
        pressure=pressure,
        barostat_time=barostat_time,
        isotropic=isotropic,
        rng=rng,
    )
    n_fragments0 = _bond_graph_components(atoms)[0] if molecule and not allow_bond_breaking else None

    writer = TrajectoryWriter(trajectory) if trajectory is not None else None
    frames: list[Atoms] = []
    temps: list[float] = []
    uncs: list[float] = []
    scale = watchdog.scale if watchdog is not None else 1.0
    state = {"step": 0, "runaway": None}

    def record() -> None:
        frame = step_frame(atoms, calculator.results, scale)
        frame.info.update(
            step=state["step"],
            time_fs=state["step"] * timestep,
            temperature=float(atoms.get_temperature()),
            thermostat=ensemble,
            target_temperature=float(temperature),
        )
        if ensemble == "npt":
            frame.info.update(density=density_of(frame), target_pressure=float(pressure))
        frames.append(frame)
        if writer is not None:
            writer.write(frame)

    def observe() -> None:
        # ASE calls observers once before the first step of every run() too: count each step once
        step = int(dyn.nsteps)
        if step <= state["step"]:
            return
        state["step"] = step
        res = calculator.results
        e = res.get("energy", np.nan)
        f = res.get("forces")
        if not np.isfinite(e) or f is None or not np.all(np.isfinite(f)) or not np.all(np.isfinite(atoms.positions)):
            raise _Stop("non-finite energy, forces or positions", physical=False)
        t = float(atoms.get_temperature())
        temps.append(t)
        raw = raw_uncertainty(res)
        if raw is not None:
            uncs.append(scale * raw)
        runaway = state["runaway"].check(atoms.get_kinetic_energy(), e)
        if runaway:
            raise _Stop(runaway)
        if watchdog is not None:
            # an uncertain frame is kept for labelling, so it must be one a reference method can compute:
            # look for collapsed atoms before the watchdog records it (every step only when it is uncertain)
            if watchdog.scale * (raw or 0.0) >= watchdog.warn:
                dmin = _min_distance(atoms)
                if dmin < MIN_DISTANCE:
                    raise _Stop(f"two atoms {dmin:.2f} Å apart (collapsed)", physical=False)
            verdict = watchdog.check(atoms, res)
            if watchdog.uncertain_frames and verdict == "warn":
                watchdog.uncertain_frames[-1].info.update(
                    step=step, temperature=t, thermostat=ensemble, target_temperature=float(temperature)
                )
            if verdict == "stop":
                raise _Stop(watchdog.stop_reason)
        if step % interval == 0:
            dmin = _min_distance(atoms)
            if dmin < MIN_DISTANCE:
                raise _Stop(f"two atoms {dmin:.2f} Å apart (collapsed)", physical=False)
            if n_fragments0 is not None and _bond_graph_components(atoms)[0] != n_fragments0:
                raise _Stop("bond broken / fragment flew off")
            record()

    dyn.attach(observe, interval=1)
    stopped = ""
    bar = None
    try:
        # evaluates step 0 (a bad calculator fails early): its energy is what the start may release without a stop
        state["runaway"] = RunawayCheck.at_start(atoms, temperature, max_temperature)
        if progress:
            from rich.progress import Progress

            bar = Progress(transient=True)
            bar.start()
            task = bar.add_task(f"MD {ensemble.upper()} {temperature:g} K", total=steps)
            chunk = max(interval, 1)
            done = 0
            while done < steps:
                n = min(chunk, steps - done)
                dyn.run(n)
                done += n
                bar.update(task, completed=done)
        else:
            dyn.run(steps)
    except _Stop as stop:
        stopped = stop.reason
        # keep the configuration the run stopped at: the most informative one if it is merely uncertain
        # (not one with collapsed atoms, which no reference method can label)
        if stop.physical and np.all(np.isfinite(atoms.positions)):
            record()
            frames[-1].info["stopped_because"] = stopped
    finally:
        if bar is not None:
            bar.stop()
        if writer is not None:
            writer.close()
    return MDResult(
        frames=frames,
        stopped_because=stopped,
        steps_done=state["step"],
        uncertain_frames=list(watchdog.uncertain_frames) if watchdog is not None else [],
        temperatures=np.array(temps),
        uncertainties=np.array(uncs),
        seconds=time.perf_counter() - start,
        n_dof=kinetic_dof(atoms),
        target_temperature=float(temperature),
        ensemble=ensemble,
        friction=float(friction),
    )
