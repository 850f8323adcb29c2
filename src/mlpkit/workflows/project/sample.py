"""Stage 1 of ``mlpkit run``: the initial configurations and an independent test set, stored as pending rows."""

from __future__ import annotations

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
        from mlpkit.sampling import md_snapshots, normal_mode_sampling, rattle
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

        if s.method == "md":
            initial = md_snapshots(
                start,
                driver,
                temperature=s.temperature,
                steps=s.n_configs * s.every,
                every=s.every,
                thermostat=sampling_thermostat(s.thermostat),
                timestep=s.timestep,
                friction=s.friction,
                pressure=s.pressure,
                barostat_time=s.barostat_time,
                seed=seed,
                progress=run.progress,
            )[: s.n_configs]
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

        test = domain_test_set(run, driver, start) if run.cfg.domain.declared else legacy_test_set(run, driver, start)

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


def domain_test_set(run: ProjectRun, driver, start=None) -> list:
    """The declared domain's test set: per temperature, one independent Langevin run of the driver (its own seed) from
    ``start`` (default: :attr:`ProjectRun.start`), ``domain.test_equilibration`` steps discarded, then
    ``domain.test_frames`` frames ``domain.test_stride`` steps apart. Each frame's ``info``: ``source``
    ``test-md-<T>K``, ``temperature`` (K)."""
    from mlpkit.sampling import md_snapshots

    start = run.start if start is None else start
    d = run.cfg.domain
    seed = run.cfg.project.seed
    test = []
    for k, temp in enumerate(d.temperatures or []):
        first = d.test_equilibration // d.test_stride + 1  # the first frame after equilibration
        frames = md_snapshots(
            start,
            driver,
            temperature=temp,
            steps=(first + d.test_frames - 1) * d.test_stride,
            every=d.test_stride,
            thermostat="langevin",
            timestep=d.test_timestep,
            friction=d.test_friction,
            seed=seed + 7919 * (k + 1),
            progress=run.progress,
        )[first - 1 :]
        for f in frames:
            f.info["source"] = f"test-md-{temp:g}K"
            f.info["driver"] = driver.method
        run.say(
            f"test set at {temp:g} K: {len(frames)} frames {d.test_stride * d.test_timestep:g} fs apart after "
            f"{d.test_equilibration * d.test_timestep:g} fs of equilibration"
        )
        test += frames
    return test


def legacy_test_set(run: ProjectRun, driver, start=None) -> list:
    """No declared domain: ``sampling.n_test`` frames split over ``sampling.test_temperatures`` (independent
    Langevin runs at the sampling timestep from ``start``, default :attr:`ProjectRun.start`, 20 intervals of
    equilibration), as earlier versions sampled them."""
    from mlpkit.sampling import md_snapshots

    start = run.start if start is None else start

    s = run.cfg.sampling
    seed = run.cfg.project.seed
    test = []
    temps = s.test_temperatures
    counts = [s.n_test // len(temps) + (1 if k < s.n_test % len(temps) else 0) for k in range(len(temps))]
    for k, (temp, n) in enumerate(zip(temps, counts, strict=True)):
        if n == 0:
            continue
        # equilibrate for 20 intervals, then keep n frames: an independent run (own seed) at this temperature
        frames = md_snapshots(
            start,
            driver,
            temperature=temp,
            steps=(n + 20) * s.every,
            every=s.every,
            thermostat="langevin",
            timestep=s.timestep,
            friction=s.friction,
            seed=seed + 7919 * (k + 1),
            progress=run.progress,
        )[20:]
        for f in frames:
            f.info["source"] = f"test-md-{temp:g}K"
            f.info["driver"] = driver.method
        test += frames
    return test
