"""The whole loop from one configuration file: sample → label → train → validate → learn → production MD →
speed table → report. ``mlpkit run CONFIG`` calls :func:`run_project`.

Every stage is a function of the configuration and of what earlier stages left in the run directory::

    RUN_DIR/
      pipeline-state.json   finished stages, their fingerprints and small results (rewritten atomically)
      mlpkit.yaml           the configuration as run (every default written out)
      dataset.db            every configuration and label (shared with the active-learning loop)
      configs/              initial.extxyz (training pool), test.extxyz (independent test set), as sampled
      models/initial/       the first committee;  models/final/ the committee production MD used
      validation/initial/   checklist of the first committee; validation/final/ of the final one
      state.json, config.json, initial.extxyz, iter-NNN/, baseline/, report/
                            the active-learning loop's own files (mlpkit.active), in the same directory so
                            that it works on the same dataset store
      production/           production.traj, uncertain.extxyz, md.png, properties/ (spectrum or RDF, MSD)
      speed.json            the ns/day table
      report.html           the project report; summary.json the numbers of the summary table

Resuming: a stage is recorded in ``pipeline-state.json`` only after all its outputs are written, with a
fingerprint of the configuration sections it (and every stage before it) depends on. Rerunning skips the
finished stages whose fingerprint still matches; changing, say, ``production.temperature`` reruns production,
speed and report only. Labels are never computed twice: they live in the dataset store, which skips known
(configuration, method) pairs and is written one finished calculation at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlpkit.config import ProjectConfig
from mlpkit.errors import InputError, MlpkitError
from mlpkit.files import atomic_write_images, atomic_write_json, jsonable

STATE_FILE = "pipeline-state.json"
STAGES = ("sample", "label", "train", "validate", "learn", "production", "speed", "report")
#: configuration sections each stage's results depend on (cumulatively: a stage also depends on earlier ones)
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "sample": ("system", "sampling", "project.seed"),
    "label": ("reference",),
    "train": ("model",),
    "validate": ("validation",),
    "learn": ("active_learning",),
    "production": ("production",),
    "speed": ("speed",),
    "report": ("report", "project.name"),
}
DESCRIPTIONS = {
    "sample": "initial configurations and an independent test set",
    "label": "reference calculations (Dask)",
    "train": "first committee",
    "validate": "quality checklist of the first committee",
    "learn": "active learning, then the checklist of the final committee",
    "production": "production MD with the watchdog, and properties",
    "speed": "ns/day: reference MD vs MLP-MD vs baseline",
    "report": "HTML report",
}


# -- small helpers ----------------------------------------------------------------------------------------


def _section(cfg_dict: dict, dotted: str) -> Any:
    node: Any = cfg_dict
    for part in dotted.split("."):
        node = node[part]
    return node


#: settings added after runs already existed: left out of the fingerprints while at their default, so that
#: upgrading mlpkit does not invalidate finished stages that ran with the behaviour the default keeps
LATER_DEFAULTS = {
    "active_learning.explore.bias": 0.0,
    "active_learning.explore.bias_width": 0.01,
    "active_learning.baseline.initial": "auto",
    "model.fit.keep": "best",
    "model.committee.warm_start": True,
}


def stage_fingerprints(cfg: ProjectConfig) -> dict[str, str]:
    """A hash per stage of the configuration it depends on, including everything earlier stages depend on."""
    data = cfg.to_dict()
    for dotted, default in LATER_DEFAULTS.items():
        *parents, key = dotted.split(".")
        node = _section(data, ".".join(parents))
        if node.get(key, default) == default:
            node.pop(key, None)
    out, acc = {}, []
    for stage in STAGES:
        acc += [(s, _section(data, s)) for s in STAGE_SECTIONS[stage]]
        out[stage] = hashlib.sha256(json.dumps(acc, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return out


class PipelineState:
    """``pipeline-state.json``: for each finished stage its fingerprint, wall seconds and small result dict."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict = {"version": 1, "stages": {}}
        if path.exists():
            try:
                self.data = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise InputError(f"{path} is corrupt ({exc}); delete it to rerun every stage") from exc

    def done(self, stage: str, fingerprint: str) -> bool:
        rec = self.data["stages"].get(stage)
        return bool(rec) and rec.get("fingerprint") == fingerprint

    def result(self, stage: str) -> dict:
        return self.data["stages"].get(stage, {}).get("result", {})

    def seconds(self, stage: str) -> float:
        return float(self.data["stages"].get(stage, {}).get("seconds", 0.0))

    def mark(self, stage: str, fingerprint: str, seconds: float, result: dict) -> None:
        self.data["stages"][stage] = {
            "fingerprint": fingerprint,
            "seconds": seconds,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "result": result,
        }
        atomic_write_json(self.path, self.data)

    def forget_from(self, stage: str) -> None:
        """Drop ``stage`` and every later one (they are stale)."""
        for s in STAGES[STAGES.index(stage) :]:
            self.data["stages"].pop(s, None)
        atomic_write_json(self.path, self.data)


# -- the run context ----------------------------------------------------------------------------------------


@dataclass
class ProjectRun:
    """Everything a stage needs: the configuration, paths, and lazily built objects."""

    cfg: ProjectConfig
    state: PipelineState
    progress: bool = True
    console: Any = None
    _cache: dict = field(default_factory=dict)

    # paths
    @property
    def run_dir(self) -> Path:
        return self.cfg.run_dir

    def path(self, *parts: str) -> Path:
        return self.run_dir.joinpath(*parts)

    # objects
    @property
    def labeler(self):
        if "labeler" not in self._cache:
            self._cache["labeler"] = self.cfg.reference.labeler()
        return self._cache["labeler"]

    @property
    def dataset(self):
        if "dataset" not in self._cache:
            from mlpkit.data import Dataset

            self._cache["dataset"] = Dataset(self.cfg.database_url)
        return self._cache["dataset"]

    @property
    def start(self):
        if "start" not in self._cache:
            self._cache["start"] = self.cfg.structure_atoms()
        return self._cache["start"].copy()

    def labelled(self, split: str):
        return self.dataset.to_atoms(method=self.labeler.method, split=split)

    def potential(self, which: str):
        from mlpkit.potentials.registry import load_potential

        key = f"model-{which}"
        if key not in self._cache:
            self._cache[key] = load_potential(self.path("models", which))
        return self._cache[key]

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(f"    {text}", highlight=False)


# -- stages -----------------------------------------------------------------------------------------------------


def stage_sample(run: ProjectRun) -> dict:
    """Initial configurations (driver MD / rattle / normal modes) and a test set from independent Langevin runs
    at ``sampling.test_temperatures``; both stored as pending rows of the reference method."""
    from mlpkit.labelers import make_labeler
    from mlpkit.sampling import md_snapshots, normal_mode_sampling, rattle

    s = run.cfg.sampling
    seed = run.cfg.project.seed
    start = run.start
    labeler = run.labeler
    labeler.check(start)  # an element the method cannot handle fails now, before any MD
    driver = labeler if s.driver == "reference" else make_labeler(s.driver)
    driver.check(start)
    run.say(f"start: {start.get_chemical_formula()} ({len(start)} atoms), driver {driver.method}")

    if s.method == "md":
        initial = md_snapshots(
            start,
            driver,
            temperature=s.temperature,
            steps=s.n_configs * s.every,
            every=s.every,
            thermostat=s.thermostat,
            timestep=s.timestep,
            friction=s.friction,
            seed=seed,
            progress=run.progress,
        )[: s.n_configs]
        source = f"initial-md-{s.temperature:g}K"
    elif s.method == "rattle":
        initial = rattle(start, s.n_configs, stdev=s.rattle_stdev, seed=seed)
        source = "initial-rattle"
    else:
        initial = normal_mode_sampling(start, driver.calculator(), s.n_configs, s.temperature, seed=seed)
        source = f"initial-normal-modes-{s.temperature:g}K"
    for f in initial:
        f.info["sampling"] = source
    if s.n_normal_modes and s.method != "normal_modes":
        minimum = _relaxed(start, driver.calculator())
        extra = normal_mode_sampling(minimum, driver.calculator(), s.n_normal_modes, s.temperature, seed=seed + 1)
        for f in extra:
            f.info["sampling"] = f"initial-normal-modes-{s.temperature:g}K"
        initial = initial + extra
        run.say(f"added {len(extra)} normal-mode configurations around the {driver.method} minimum")

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
        test += frames

    atomic_write_images(run.path("configs", "initial.extxyz"), initial)
    atomic_write_images(run.path("configs", "test.extxyz"), test)
    ds = run.dataset
    # the same train/valid split (and source name) the active-learning loop gives its initial set, so when the
    # loop later reads these configurations every one is already in the store, labelled, with its split
    from mlpkit.active.loop import split_batch

    valid = split_batch(len(initial), run.cfg.active_learning.select.valid_fraction, seed)
    added = ds.add(
        [a for a, v in zip(initial, valid, strict=True) if not v],
        method=labeler.method,
        source="initial",
        split="train",
    )
    added_valid = ds.add(
        [a for a, v in zip(initial, valid, strict=True) if v], method=labeler.method, source="initial", split="valid"
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
    }


def stage_label(run: ProjectRun) -> dict:
    """Label every pending row of the reference method on Dask (each result stored as it arrives)."""
    from mlpkit.execution import label_pending

    ex = run.cfg.execution
    labeler = run.labeler
    rep = label_pending(
        run.dataset,
        labeler,
        workers=ex.workers,
        scheduler=ex.scheduler,
        cluster_config=run.cfg.jobqueue_config(),
        progress=run.progress,
    )
    ds = run.dataset
    n_train = ds.count(method=labeler.method, status="labelled", split="train")
    n_valid = ds.count(method=labeler.method, status="labelled", split="valid")
    n_test = ds.count(method=labeler.method, status="labelled", split="test")
    n_failed = ds.count(method=labeler.method, status="failed")
    run.say(
        f"{rep.labelled} labelled now, {rep.failed} failed ({rep.seconds:.0f} s; {getattr(rep, 'workers', '')}); "
        f"store: {n_train} train, {n_valid} valid, {n_test} test, {n_failed} failed"
    )
    if n_train < 2:
        raise MlpkitError(
            f"only {n_train} training configurations could be labelled with {labeler.method} "
            f"({n_failed} failed; see `mlpkit data summary --db {run.cfg.database_url}`)"
        )
    if n_test == 0 and run.cfg.sampling.n_test > 0:
        raise MlpkitError("no test configuration could be labelled; see the failed rows in the dataset")
    label_seconds = sum(float(r.get("seconds", 0.0)) for r in ds.rows(method=labeler.method, status="labelled"))
    return {
        "labelled_now": rep.labelled,
        "failed_now": rep.failed,
        "train": n_train,
        "valid": n_valid,
        "test": n_test,
        "failed": n_failed,
        "label_seconds": label_seconds,
        "method": labeler.method,
    }


def _fit_settings(run: ProjectRun) -> dict:
    return run.cfg.model.fit.model_dump()


def stage_train(run: ProjectRun) -> dict:
    """Train the first committee on the labelled initial set (the 'valid' share drives early stopping)."""
    from mlpkit.uncertainty.model_spec import train_committee

    m = run.cfg.model
    train, valid = run.labelled("train"), run.labelled("valid")
    run.say(f"{m.committee.n_members} x {m.family} on {len(train)} configurations ({len(valid)} for early stopping)")
    t0 = time.perf_counter()
    committee = train_committee(
        train,
        valid or None,
        family=m.family,
        n_members=m.committee.n_members,
        bootstrap=m.committee.bootstrap,
        seed=run.cfg.project.seed,
        hyperparameters=m.hyperparameters,
        progress=run.progress,
        **_fit_settings(run),
    )
    committee.save(run.path("models", "initial"))
    run._cache.pop("model-initial", None)
    return {"n_train": len(train), "n_valid": len(valid), "seconds": time.perf_counter() - t0}


def _validate(run: ProjectRun, which: str) -> dict:
    try:
        from mlpkit.validation import validate
    except ImportError:  # the package may not re-export it
        from mlpkit.validation.report import validate
    from mlpkit.validation.settings import ValidationSettings

    settings = ValidationSettings(**run.cfg.validation.model_dump(exclude={"enabled"}))
    pot = run.potential(which)
    train, test = run.labelled("train"), run.labelled("test")
    if not test:
        test = train
        run.say("[yellow]no test set (sampling.n_test = 0): validating on the training data[/]")
    report = validate(
        pot,
        train,
        test,
        out_dir=run.path("validation", which),
        settings=settings,
        reference=run.labeler,
        progress=run.progress,
        name=f"{which} committee",
    )
    d = report.to_dict()
    test_m = d.get("metrics", {}).get("test", {})
    return {
        "passed": d.get("passed"),
        "counts": d.get("counts"),
        "test_forces_mae": test_m.get("forces_mae"),
        "test_energy_mae_per_atom": test_m.get("energy_mae_per_atom"),
        "json": str(report.json_path),
        "html": str(report.html_path),
    }


def stage_validate(run: ProjectRun) -> dict:
    if not run.cfg.validation.enabled:
        return {"skipped": "validation.enabled is false"}
    res = _validate(run, "initial")
    c = res["counts"] or {}
    run.say(f"checklist: {c.get('PASS', 0)} PASS, {c.get('WARN', 0)} WARN, {c.get('FAIL', 0)} FAIL")
    return res


def active_learning_config(run: ProjectRun):
    """The :class:`mlpkit.active.config.ActiveLearningConfig` this project's sections describe.

    Its initial set is the pipeline's labelled initial set (``configs/initial-labelled.extxyz``, every frame) and
    its test set the pipeline's labelled test set, and it runs in the same directory (same dataset store): the
    loop starts where the pipeline is and labels nothing twice.
    """
    from mlpkit.active.config import ActiveLearningConfig

    cfg = run.cfg
    al = cfg.active_learning
    structure = cfg.system.structure
    spath = cfg.resolve(structure)
    n_initial = run.state.result("label").get("train", 0) + run.state.result("label").get("valid", 0)
    data = {
        "name": cfg.project.name,
        "structure": str(spath) if spath.exists() else structure,
        "reference": {"method": cfg.reference.method, **cfg.reference.options},
        "driver": None if cfg.sampling.driver == "reference" else {"method": cfg.sampling.driver},
        "seed": cfg.project.seed,
        "max_iterations": al.max_iterations,
        "label_budget": max(al.label_budget, n_initial),
        "initial": {"n": n_initial, "sampling": "file", "file": str(run.path("configs", "initial-labelled.extxyz"))},
        "explore": al.explore.model_dump(),
        "trust": al.trust.model_dump(),
        "select": al.select.model_dump(),
        "committee": {
            "family": cfg.model.family,
            "n_members": cfg.model.committee.n_members,
            "bootstrap": cfg.model.committee.bootstrap,
            "warm_start": cfg.model.committee.warm_start,
            "hyperparameters": cfg.model.hyperparameters,
            "fit": _fit_settings(run),
        },
        "stop": al.stop.model_dump(),
        "test": {"file": str(run.path("configs", "test-labelled.extxyz"))},
        "baseline": al.baseline.model_dump(),
        "execution": {
            "workers": max(cfg.execution.workers, 1),
            "scheduler": cfg.execution.scheduler,
            "jobqueue": None if cfg.execution.jobqueue is None else cfg.execution.jobqueue.model_dump(),
        },
    }
    return ActiveLearningConfig.from_dict(data, where="active_learning (from the project configuration)")


def stage_learn(run: ProjectRun) -> dict:
    """Active learning from the pipeline's data; its final committee becomes models/final and is validated."""
    import shutil

    out: dict = {}
    if run.cfg.active_learning.enabled:
        from mlpkit.active.loop import run_active_learning

        method = run.labeler.method
        initial = [a for a in run.dataset.to_atoms(method=method, source="initial")]
        atomic_write_images(run.path("configs", "initial-labelled.extxyz"), initial)
        atomic_write_images(run.path("configs", "test-labelled.extxyz"), run.labelled("test"))
        al_cfg = active_learning_config(run)
        log = (lambda msg: run.say(msg)) if run.progress else None
        summary = run_active_learning(al_cfg, run.run_dir, progress=run.progress, log=log)
        out = _summary_dict(summary)
        out.pop("run_dir", None)
        final_dir = run.path(f"iter-{int(summary.iterations):03d}", "model")
        if not (final_dir / "model.json").exists():
            raise MlpkitError(f"the active-learning run left no model in {final_dir}")
        metrics = _load_json(final_dir.parent / "metrics.json") or {}
        out["trust"] = metrics.get("trust", {})
        out["final_model"] = str(final_dir)
        out["method"] = method
        src = final_dir
    else:
        src = run.path("models", "initial")
        out["skipped"] = "active_learning.enabled is false: the first committee is the final one"
    dst = run.path("models", "final")
    tmp = run.path("models", ".final.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)
    run._cache.pop("model-final", None)
    if run.cfg.validation.enabled and run.cfg.active_learning.enabled:
        run.say("checklist of the final committee")
        out["validation"] = _validate(run, "final")
    elif run.cfg.validation.enabled:
        out["validation"] = run.state.result("validate")
    return out


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _summary_dict(summary: Any) -> dict:
    if hasattr(summary, "to_dict"):
        return jsonable(summary.to_dict())
    import dataclasses

    if dataclasses.is_dataclass(summary):
        return jsonable(dataclasses.asdict(summary))
    return jsonable(dict(summary))


def _relaxed(atoms, calculator, fmax: float = 1e-3, steps: int = 500):
    """A copy of ``atoms`` relaxed with ``calculator`` (BFGS to ``fmax`` eV/Å)."""
    from ase.optimize import BFGS

    a = atoms.copy()
    a.calc = calculator
    BFGS(a, logfile=None).run(fmax=fmax, steps=steps)
    a.calc = None
    return a


def watchdog_bounds(run: ProjectRun) -> tuple[float, float, float, str]:
    """(warn, stop, scale, where from) for production MD: the configured numbers, or for 'auto' the final
    active-learning trust window (lower, upper) and its calibration scale; 0.15 / 0.5 eV/Å and the raw committee
    spread without active learning."""
    w = run.cfg.production.watchdog
    trust = run.state.result("learn").get("trust") or {}
    scale = float(trust.get("scale", 1.0) or 1.0)
    warn = float(trust.get("lower", 0.15)) if w.warn == "auto" else float(w.warn)
    stop = float(trust.get("upper", 0.5)) if w.stop == "auto" else float(w.stop)
    origin = "final active-learning trust window" if trust and "auto" in (w.warn, w.stop) else "configuration"
    if stop <= warn:
        stop = 3 * warn
        origin += " (stop raised to 3x warn)"
    return warn, stop, scale, origin


def stage_production(run: ProjectRun) -> dict:
    """Production MD with the final committee, watched for uncertainty; properties of the trajectory."""
    from mlpkit.md.dynamics import UncertaintyWatchdog, run_md
    from mlpkit.md.properties import is_molecule, trajectory_properties

    p = run.cfg.production
    if not p.enabled:
        return {"skipped": "production.enabled is false"}
    pot = run.potential("final")
    out_dir = run.path("production")
    out_dir.mkdir(parents=True, exist_ok=True)
    warn, stop, scale, origin = watchdog_bounds(run)
    dog = UncertaintyWatchdog(warn, stop, scale=scale)
    start = run.start
    run.say(
        f"{p.ensemble.upper()} {p.temperature:g} K, {p.steps} x {p.timestep:g} fs; watchdog warn {warn:.3g} / "
        f"stop {stop:.3g} eV/Å ({origin}; σ scale {scale:.3g})"
    )
    res = run_md(
        start,
        pot.calculator(),
        ensemble=p.ensemble,
        temperature=p.temperature,
        timestep=p.timestep,
        steps=p.steps,
        friction=p.friction,
        interval=p.interval,
        seed=run.cfg.project.seed,
        trajectory=out_dir / p.trajectory,
        watchdog=dog,
        progress=run.progress,
    )
    atomic_write_images(out_dir / "uncertain.extxyz", res.uncertain_frames)
    md_png = _plot_md(res, p.timestep, warn, stop, out_dir / "md.png")
    if res.stopped_because:
        run.say(f"[yellow]stopped after {res.steps_done} steps: {res.stopped_because}[/]")
    if res.uncertain_frames:
        run.say(
            f"{len(res.uncertain_frames)} uncertain frames saved to {out_dir / 'uncertain.extxyz'}; label them with "
            f"`mlpkit label --input {out_dir / 'uncertain.extxyz'} --db {run.cfg.database_url} --method "
            f"{run.cfg.reference.method}` and rerun active learning"
        )
    props: dict = {}
    frames = res.frames
    dt = p.timestep * p.interval
    if len(frames) >= 10:
        equilibrium = _relaxed(start, pot.calculator()) if is_molecule(start) else None
        props = trajectory_properties(
            frames,
            dt,
            out_dir / "properties",
            potential=pot,
            equilibrium=equilibrium,
            reference_frequencies=_validation_reference_frequencies(run),
        )
        if "spectrum" in props:
            run.say(f"spectrum peaks (cm⁻¹): {', '.join(f'{x:.0f}' for x in props['spectrum']['peaks_cm-1'])}")
        if "harmonic_cm-1" in props:
            run.say(f"harmonic frequencies (cm⁻¹): {', '.join(f'{x:.0f}' for x in props['harmonic_cm-1'])}")
        if "diffusion" in props:
            run.say(f"diffusion coefficient: {props['diffusion']['D_cm2_per_s']:.3g} cm²/s")
    else:
        props = {"skipped": f"only {len(frames)} frames recorded: too few for properties"}
    temps = res.temperatures
    result = {
        "steps_done": res.steps_done,
        "steps": p.steps,
        "stopped_because": res.stopped_because,
        "n_frames": len(frames),
        "n_uncertain": len(res.uncertain_frames),
        "max_uncertainty": float(dog.max_seen),
        "mean_temperature": float(temps.mean()) if len(temps) else None,
        "seconds": res.seconds,
        "trajectory": str(out_dir / p.trajectory),
        "uncertain_file": str(out_dir / "uncertain.extxyz"),
        "md_plot": str(md_png),
        "properties": props,
        "calibration_scale": scale,
        "watchdog": {"warn": warn, "stop": stop, "from": origin},
    }
    atomic_write_json(out_dir / "production.json", result)
    return result


def _validation_reference_frequencies(run: ProjectRun) -> list[float] | None:
    """The reference method's harmonic frequencies (cm⁻¹) the validation computed, if it did."""
    for which in ("final", "initial"):
        data = _load_json(run.path("validation", which, "validation.json")) or {}
        for check in data.get("checks", []):
            if check.get("key") == "vibrations":
                ref = (check.get("details") or {}).get("reference") or {}
                if isinstance(ref, dict) and ref.get("frequencies"):
                    return [float(x) for x in ref["frequencies"]]
    return None


def _plot_md(res, timestep: float, warn: float, stop: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4), dpi=110)
    t = (np.arange(len(res.temperatures)) + 1) * timestep / 1000
    ax1.plot(t, res.temperatures, lw=0.6)
    ax1.set_xlabel("time (ps)")
    ax1.set_ylabel("temperature (K)")
    ax1.set_title("production MD: temperature")
    if len(res.uncertainties):
        tu = (np.arange(len(res.uncertainties)) + 1) * timestep / 1000
        ax2.plot(tu, res.uncertainties, lw=0.6)
        ax2.axhline(warn, color="orange", ls="--", lw=1, label=f"warn {warn:.3g} eV/Å")
        ax2.axhline(stop, color="red", ls="--", lw=1, label=f"stop {stop:.3g} eV/Å")
        ax2.legend(fontsize=8)
    ax2.set_xlabel("time (ps)")
    ax2.set_ylabel("uncertainty (eV/Å)")
    ax2.set_title("committee force uncertainty")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def stage_speed(run: ProjectRun) -> dict:
    from mlpkit.md.speed import speed_table, speedup_summary

    s = run.cfg.speed
    if not s.enabled:
        return {"skipped": "speed.enabled is false"}
    rows = speed_table(
        run.start,
        reference=run.labeler,
        potential=run.potential("final"),
        baseline=s.baseline,
        reference_steps=s.reference_steps,
        mlp_steps=s.mlp_steps,
        baseline_steps=s.baseline_steps,
        timestep=s.timestep,
        progress=run.say,
    )
    data = {"rows": [r.to_dict() for r in rows], "ratios": speedup_summary(rows)}
    atomic_write_json(run.path("speed.json"), data)
    for r in rows:
        run.say(f"{r.engine:32s} {r.method:24s} {r.seconds_per_step * 1e3:10.2f} ms/step {r.ns_per_day:12.4g} ns/day")
    return data


def stage_report(run: ProjectRun) -> dict:
    from mlpkit.report import build_report

    path = build_report(run)
    return {"path": str(path)}


STAGE_FUNCTIONS: dict[str, Callable[[ProjectRun], dict]] = {
    "sample": stage_sample,
    "label": stage_label,
    "train": stage_train,
    "validate": stage_validate,
    "learn": stage_learn,
    "production": stage_production,
    "speed": stage_speed,
    "report": stage_report,
}


# -- summary ----------------------------------------------------------------------------------------------------


def stage_summary(stage: str, result: dict) -> str:
    """One line that says what a finished stage produced (for the summary table)."""

    def f(x, fmt="{:.3g}"):
        return "–" if x is None else fmt.format(x)

    if "skipped" in result:
        return str(result["skipped"])
    if stage == "sample":
        return f"{result.get('initial')} initial + {result.get('test')} test configurations ({result.get('driver')})"
    if stage == "label":
        return (
            f"{result.get('train')} train + {result.get('valid', 0)} valid + {result.get('test')} test labels of "
            f"{result.get('method')}, "
            f"{result.get('failed', 0)} failed, {f(result.get('label_seconds'), '{:.1f}')} s of reference time"
        )
    if stage == "train":
        return f"committee on {result.get('n_train')} configurations ({f(result.get('seconds'), '{:.0f}')} s)"
    if stage in ("validate",):
        c = result.get("counts") or {}
        return (
            f"{c.get('PASS', 0)} PASS / {c.get('WARN', 0)} WARN / {c.get('FAIL', 0)} FAIL; test force MAE "
            f"{f(_milli(result.get('test_forces_mae')), '{:.1f}')} meV/Å"
        )
    if stage == "learn":
        v = result.get("validation") or {}
        c = v.get("counts") or {}
        bits = []
        for key, label in (("iterations", "iterations"), ("n_labels", "labels"), ("stopped_because", "stop")):
            if result.get(key) is not None:
                bits.append(f"{label}: {result[key]}")
        if c:
            bits.append(f"final checklist {c.get('PASS', 0)} PASS / {c.get('WARN', 0)} WARN / {c.get('FAIL', 0)} FAIL")
        if v.get("test_forces_mae") is not None:
            bits.append(f"test force MAE {_milli(v['test_forces_mae']):.1f} meV/Å")
        return "; ".join(bits)
    if stage == "production":
        stop = result.get("stopped_because") or "completed"
        return (
            f"{result.get('steps_done')}/{result.get('steps')} steps ({stop}); {result.get('n_uncertain')} uncertain "
            f"frames; max σ {f(result.get('max_uncertainty'))} eV/Å"
        )
    if stage == "speed":
        ratios = result.get("ratios", {})
        r = ratios.get("mlp_over_reference")
        if not r:
            return f"{len(result.get('rows', []))} engines timed"
        n = len(result.get("rows", []))
        return f"MLP-MD {r:,.3g}x {'faster than' if r >= 1 else 'the speed of'} reference MD ({n} engines timed)"
    if stage == "report":
        return str(result.get("path"))
    return ""


def _milli(x):
    return None if x is None else 1000 * float(x)


# -- entry point ------------------------------------------------------------------------------------------------


def run_project(
    config_path: str | os.PathLike,
    *,
    stages: tuple[str, ...] | None = None,
    restart_from: str | None = None,
    progress: bool = True,
    console=None,
) -> dict:
    """Run (or resume) the project described by ``config_path``; returns the summary dict.

    stages:        run only these (and skip the rest even if not done; later stages need earlier outputs)
    restart_from:  forget this stage and every later one first, and run them again
    progress:      print stage headers, component progress bars and the summary table (rich, to stderr)
    """
    from rich.console import Console

    cfg = ProjectConfig.from_yaml(config_path)
    console = console or Console(stderr=True)
    show = console if progress else None
    for name in (stages or ()) + ((restart_from,) if restart_from else ()):
        if name not in STAGES:
            raise InputError(f"unknown stage {name!r}; stages are: {', '.join(STAGES)}")

    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.write_yaml(run_dir / "mlpkit.yaml", header=f"configuration as run (source: {cfg.source})")
    state = PipelineState(run_dir / STATE_FILE)
    if restart_from:
        state.forget_from(restart_from)
    fingerprints = stage_fingerprints(cfg)
    # a stage whose inputs changed invalidates itself and everything after it
    for stage in STAGES:
        rec = state.data["stages"].get(stage)
        if rec and rec.get("fingerprint") != fingerprints[stage]:
            _refuse_stale_data(cfg, stage)
            if show:
                console.print(f"[yellow]configuration changed for '{stage}': rerunning it and every later stage[/]")
            state.forget_from(stage)
            break

    run = ProjectRun(cfg=cfg, state=state, progress=progress, console=show)
    t_all = time.perf_counter()
    if show:
        console.rule(f"[bold]mlpkit run: {cfg.project.name}[/]")
        console.print(f"run directory: {run_dir}", highlight=False)
    for i, stage in enumerate(STAGES, 1):
        header = f"[bold cyan][{i}/{len(STAGES)}] {stage}[/] – {DESCRIPTIONS[stage]}"
        if state.done(stage, fingerprints[stage]):
            if show:
                console.print(f"{header} [green]done earlier, skipped[/]", highlight=False)
            continue
        if stages is not None and stage not in stages:
            if show:
                console.print(f"{header} [dim]not requested[/]", highlight=False)
            continue
        if show:
            console.print(header, highlight=False)
        t0 = time.perf_counter()
        result = STAGE_FUNCTIONS[stage](run)
        seconds = time.perf_counter() - t0
        state.mark(stage, fingerprints[stage], seconds, jsonable(result))
        if show:
            console.print(f"    [green]✓ {stage}[/] in {seconds:.1f} s", highlight=False)

    summary = project_summary(run)
    summary["seconds_this_run"] = time.perf_counter() - t_all
    atomic_write_json(run_dir / "summary.json", summary)
    if show:
        print_summary(summary, console)
    return summary


def _refuse_stale_data(cfg: ProjectConfig, stage: str) -> None:
    """Some changes cannot be applied to a run directory that already holds their results: new sampling settings
    would mix old and new configurations in the training data, and the active-learning loop refuses to resume with
    other settings. Say so before anything runs."""
    run_dir = cfg.run_dir
    changed = ", ".join(STAGE_SECTIONS[stage])
    hint = (
        f"use a new project.run_dir (or delete {run_dir}); labels already computed can be copied over with "
        "`mlpkit data export` / `mlpkit data import`"
    )
    if stage == "sample" and (run_dir / "dataset.db").exists():
        raise InputError(f"{run_dir} holds configurations sampled with other settings ({changed} changed): {hint}")
    if STAGES.index(stage) <= STAGES.index("learn") and (run_dir / "state.json").exists():
        raise InputError(
            f"active learning in {run_dir} started with other settings (the {stage} stage's inputs changed: "
            f"{changed}): {hint}"
        )


def project_summary(run: ProjectRun) -> dict:
    rows = []
    for stage in STAGES:
        rec = run.state.data["stages"].get(stage)
        if rec:
            rows.append(
                {
                    "stage": stage,
                    "status": "done",
                    "seconds": rec.get("seconds", 0.0),
                    "result": stage_summary(stage, rec.get("result", {})),
                }
            )
        else:
            rows.append({"stage": stage, "status": "pending", "seconds": None, "result": ""})
    report = run.state.result("report").get("path")
    return {
        "project": run.cfg.project.name,
        "run_dir": str(run.run_dir),
        "stages": rows,
        "report": report,
        "total_stage_seconds": sum(r["seconds"] or 0.0 for r in rows),
        "complete": all(r["status"] == "done" for r in rows),
    }


def print_summary(summary: dict, console) -> None:
    from rich.table import Table

    table = Table(title=f"mlpkit run: {summary['project']}", show_lines=False)
    table.add_column("stage", style="bold")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("result")
    for r in summary["stages"]:
        status = "[green]done[/]" if r["status"] == "done" else "[yellow]pending[/]"
        secs = "" if r["seconds"] is None else _fmt_seconds(r["seconds"])
        table.add_row(r["stage"], status, secs, r["result"])
    console.print(table)
    console.print(f"total stage time: {_fmt_seconds(summary['total_stage_seconds'])}", highlight=False)
    if summary.get("report"):
        console.print(f"[bold]report:[/] {summary['report']}", highlight=False)
    if not summary["complete"]:
        console.print("[yellow]not every stage has run; run the same command again to continue[/]")


def _fmt_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    return f"{m} min {sec:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"
