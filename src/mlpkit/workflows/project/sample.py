"""Stage 1 of ``mlpkit run``: the initial configurations and an independent test set, stored as pending rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlpkit.config.sampling import sampling_thermostat
from mlpkit.files import atomic_write_images
from mlpkit.workflows.active_learning.labelling import split_batch
from mlpkit.workflows.engine import Step
from mlpkit.workflows.project.context import START_FILE, ProjectRun, relaxed


class Sample(Step):
    name = "sample"
    description = "initial configurations and an independent test set"
    sections = ("system", "domain", "sampling", "project.seed")

    def run(self, run: ProjectRun) -> dict:
        """Initial configurations (driver MD / rattle / normal modes) and a test set from independent Langevin runs
        at the declared domain's temperatures (:func:`domain_test_set`; without a declared domain at
        ``sampling.test_temperatures``); both stored as pending rows of the reference method."""
        from mlpkit.sampling import normal_mode_sampling, rattle
        from mlpkit.sampling.driver import driver_provenance, make_driver

        s = run.cfg.sampling
        seed = run.cfg.project.seed
        start = run.cfg.structure_atoms()  # as built (a box spec packed now), not an earlier run's equilibrated one
        labeler = run.labeler
        labeler.check(start)  # an element the method cannot handle fails now, before any MD
        spec = s.driver_spec(run.cfg.base_dir)
        driver = labeler if spec is None else make_driver(spec)  # a method, or any potential's ASE calculator
        driver.check(start)
        run.say(f"start: {start.get_chemical_formula()} ({len(start)} atoms), driver {driver.method}")
        equilibration = None
        if start.pbc.all():
            start = equilibrated_start(run, start, driver)
            equilibration = start.info["equilibration"]

        test_chains = domain_test_chains(run) if run.cfg.domain.declared else legacy_test_chains(run)
        chains = ([initial_chain(run)] if s.method == "md" else []) + test_chains
        runs = run_chains_of(run, start, driver, chains)
        if s.method == "md":
            initial = runs.pop(0)
            source = f"initial-md-{s.temperature:g}K" + (f"-npt-{s.pressure:g}bar" if s.thermostat == "npt" else "")
            if s.thermostat == "npt":
                densities = [f.info["density"] for f in initial]
                run.say(
                    f"NPT sampling at {s.pressure:g} bar: densities {min(densities):.3f}-{max(densities):.3f} g/cm³"
                )
        elif s.method == "rattle":
            initial = rattle(start, s.n_configs, stdev=s.rattle_stdev, seed=seed)
            source = "initial-rattle"
        else:
            initial = normal_mode_sampling(start, driver.calculator(), s.n_configs, s.temperature, seed=seed)
            source = f"initial-normal-modes-{s.temperature:g}K"
        for f in initial:
            f.info["sampling"] = source
            if s.method != "rattle":
                f.info["driver"] = driver.method  # provenance: what moved the atoms (never a label)
        if s.n_normal_modes and s.method != "normal_modes" and start.pbc.all():
            # a liquid has no single minimum whose curvature the potential must learn, and the relaxation and
            # finite-difference Hessian of a whole box cost hundreds of driver calls
            run.say(f"sampling.n_normal_modes ({s.n_normal_modes}) skipped: the start is a periodic box")
        elif s.n_normal_modes and s.method != "normal_modes":
            minimum = relaxed(start, driver.calculator())
            extra = normal_mode_sampling(minimum, driver.calculator(), s.n_normal_modes, s.temperature, seed=seed + 1)
            for f in extra:
                f.info["sampling"] = f"initial-normal-modes-{s.temperature:g}K"
                f.info["driver"] = driver.method
            initial = initial + extra
            run.say(f"added {len(extra)} normal-mode configurations around the {driver.method} minimum")

        test = [f for frames in runs for f in frames]

        atomic_write_images(run.path("configs", "initial.extxyz"), initial)
        atomic_write_images(run.path("configs", "test.extxyz"), test)
        ds = run.dataset
        # the same train/valid split (and source name) the active-learning loop gives its initial set, so when the
        # loop later reads these configurations every one is already in the store, labelled, with its split
        valid = split_batch(len(initial), run.cfg.active_learning.select.valid_fraction, seed)
        added = ds.add(
            [a for a, v in zip(initial, valid, strict=True) if not v],
            method=labeler.method,
            source="initial",
            split="train",
        )
        added_valid = ds.add(
            [a for a, v in zip(initial, valid, strict=True) if v],
            method=labeler.method,
            source="initial",
            split="valid",
        )
        by_temp: dict[str, list] = {}
        for f in test:
            by_temp.setdefault(f.info["source"], []).append(f)
        added_test = sum(ds.add(v, method=labeler.method, source=k, split="test").added for k, v in by_temp.items())
        n_new = added.added + added_valid.added + added_test
        run.say(
            f"{len(initial)} initial ({int(valid.sum())} held out for validation) + {len(test)} test configurations "
            f"({n_new} new rows in {run.cfg.database_url})"
        )
        return {
            "initial": len(initial),
            "valid": int(valid.sum()),
            "test": len(test),
            "sampling": source,
            "driver": driver.method,
            "driver_provenance": driver_provenance(driver),
            **({"equilibration": equilibration} if equilibration else {}),
        }


def equilibrated_start(run: ProjectRun, start, driver):
    """A periodic start made ready for sampling (:func:`mlpkit.sampling.equilibrate_box`): FIRE on the positions
    until the largest force is below 0.5 eV/Å (at most 50 steps: a packed box has contacts down to 1.6 Å and kbar of
    pressure), then ``sampling.equilibration`` steps of driver NVT at the sampling temperature. Written to
    ``configs/start.extxyz``, which every later stage starts from (:attr:`ProjectRun.start`)."""
    from mlpkit.data.boxes import density_of
    from mlpkit.sampling import equilibrate_box

    s = run.cfg.sampling
    eq = equilibrate_box(
        start,
        driver,
        temperature=s.temperature,
        relax_steps=50,
        fmax=0.5,
        nvt_steps=s.equilibration,
        timestep=min(s.timestep, 0.5),  # the packed box's first steps are violent: a short step for them
        friction=s.friction,
        seed=run.cfg.project.seed,
    )
    atomic_write_images(run.path("configs", START_FILE), [eq])
    run._cache["start"] = eq
    run.say(f"equilibrated the periodic start ({eq.info['equilibration']}; {density_of(eq):.3f} g/cm³)")
    return eq


@dataclass
class Chain:
    """One driver MD run of the sample stage: ``md`` are :func:`mlpkit.sampling.md_snapshots` keyword arguments;
    of its frames, those from index ``first`` on are kept (before: equilibration), at most ``keep``, each with
    ``info`` added; ``what`` names it in messages."""

    what: str
    md: dict[str, Any]
    first: int = 0
    keep: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def initial_chain(run: ProjectRun) -> Chain:
    """The initial set's MD (``sampling.method: md``): ``n_configs`` frames ``every`` steps apart."""
    s = run.cfg.sampling
    md = dict(
        temperature=s.temperature,
        steps=s.n_configs * s.every,
        every=s.every,
        thermostat=sampling_thermostat(s.thermostat),
        timestep=s.timestep,
        friction=s.friction,
        pressure=s.pressure,
        barostat_time=s.barostat_time,
        seed=run.cfg.project.seed,
    )
    return Chain(f"initial MD at {s.temperature:g} K", md, keep=s.n_configs)


def domain_test_chains(run: ProjectRun) -> list[Chain]:
    """The declared domain's test runs: per temperature, one independent Langevin run of the driver (its own seed),
    ``domain.test_equilibration`` steps discarded, then ``domain.test_frames`` frames ``domain.test_stride`` steps
    apart. Each frame's ``info``: ``source`` ``test-md-<T>K``, ``temperature`` (K)."""
    d = run.cfg.domain
    seed = run.cfg.project.seed
    chains = []
    for k, temp in enumerate(d.temperatures or []):
        first = d.test_equilibration // d.test_stride + 1  # the first frame after equilibration
        md = dict(
            temperature=temp,
            steps=(first + d.test_frames - 1) * d.test_stride,
            every=d.test_stride,
            thermostat="langevin",
            timestep=d.test_timestep,
            friction=d.test_friction,
            seed=seed + 7919 * (k + 1),
        )
        note = (
            f"test set at {temp:g} K: {d.test_frames} frames {d.test_stride * d.test_timestep:g} fs apart after "
            f"{d.test_equilibration * d.test_timestep:g} fs of equilibration"
        )
        chains.append(Chain(f"test MD at {temp:g} K", md, first - 1, None, {"source": f"test-md-{temp:g}K"}, note))
    return chains


def legacy_test_chains(run: ProjectRun) -> list[Chain]:
    """No declared domain: ``sampling.n_test`` frames split over ``sampling.test_temperatures`` (independent
    Langevin runs at the sampling timestep, 20 intervals of equilibration), as earlier versions sampled them."""
    s = run.cfg.sampling
    seed = run.cfg.project.seed
    temps = s.test_temperatures
    counts = [s.n_test // len(temps) + (1 if k < s.n_test % len(temps) else 0) for k in range(len(temps))]
    chains = []
    for k, (temp, n) in enumerate(zip(temps, counts, strict=True)):
        if n == 0:
            continue
        # equilibrate for 20 intervals, then keep n frames: an independent run (own seed) at this temperature
        md = dict(
            temperature=temp,
            steps=(n + 20) * s.every,
            every=s.every,
            thermostat="langevin",
            timestep=s.timestep,
            friction=s.friction,
            seed=seed + 7919 * (k + 1),
        )
        chains.append(Chain(f"test MD at {temp:g} K", md, 20, None, {"source": f"test-md-{temp:g}K"}))
    return chains


#: seconds of driver MD below which the sample stage's runs stay in this process: a spawned worker costs a few
#: seconds to start (imports), which only pays for runs of expensive drivers (GFN2-xTB or DFT on a periodic box)
MIN_SECONDS_FOR_PROCESSES = 60.0


def chain_processes(workers: int, n_chains: int, seconds_per_step: float, total_steps: int) -> int:
    """Processes for the sample stage's driver MD: up to ``workers`` (one per chain), 1 when the whole MD is
    estimated (``seconds_per_step`` x ``total_steps``) below :data:`MIN_SECONDS_FOR_PROCESSES`."""
    if seconds_per_step * total_steps < MIN_SECONDS_FOR_PROCESSES:
        return 1
    return max(1, min(workers, n_chains))


def _seconds_per_call(driver, atoms) -> float:
    """Wall seconds of one energy + forces call of ``driver`` on ``atoms`` (a second call: the first may set up)."""
    import time

    a = atoms.copy()
    a.calc = driver.calculator()
    a.get_forces()
    a.positions[0, 0] += 1e-3  # a new geometry, so the calculator computes again
    t0 = time.perf_counter()
    a.get_forces()
    return time.perf_counter() - t0


def run_chains_of(run: ProjectRun, start, driver, chains: list[Chain]) -> list[list]:
    """The kept frames of every chain, from ``start``: side by side in up to ``execution.workers`` local processes
    when the driver's MD is worth it (:func:`chain_processes`, :func:`mlpkit.sampling.chains.run_chains`); one after
    another with a scheduler, a batch cluster or workers 0."""
    import time

    from mlpkit.sampling.chains import picklable, run_chains

    x = run.cfg.execution
    processes = 1
    if x.scheduler is None and x.jobqueue is None and x.workers > 1 and len(chains) > 1 and picklable(driver):
        total = sum(c.md["steps"] for c in chains)
        processes = chain_processes(x.workers, len(chains), _seconds_per_call(driver, start), total)
    if processes > 1:
        run.say(
            f"{len(chains)} driver MD runs side by side in {processes} processes: {', '.join(c.what for c in chains)}"
        )
    t0 = time.perf_counter()

    def done(i: int, frames: list) -> None:
        if processes > 1:
            run.say(f"  {chains[i].what}: done after {time.perf_counter() - t0:.0f} s")

    runs = run_chains(start, driver, [c.md for c in chains], processes=processes, progress=run.progress, on_done=done)
    out = []
    for chain, frames in zip(chains, runs, strict=True):
        kept = frames[chain.first :]
        kept = kept[: chain.keep] if chain.keep is not None else kept
        for f in kept:
            f.info.update(chain.info)
            f.info["driver"] = driver.method
        if chain.note:
            run.say(chain.note)
        out.append(kept)
    return out


def domain_test_set(run: ProjectRun, driver, start=None) -> list:
    """The declared domain's test set (:func:`domain_test_chains`) from ``start`` (default:
    :attr:`ProjectRun.start`)."""
    start = run.start if start is None else start
    return [f for frames in run_chains_of(run, start, driver, domain_test_chains(run)) for f in frames]
