"""The whole loop from one configuration file: sample → label → train → validate → learn → production MD →
speed table → every family of a mixed committee alone → report. ``mlpkit run CONFIG`` calls :func:`run_project`.

Every stage is a step (:class:`mlpkit.workflows.engine.Step`, one module each in this package) whose
results depend on the configuration and on what earlier stages left in the run directory::

    RUN_DIR/
      pipeline-state.json   finished stages, their fingerprints and small results (rewritten atomically)
      mlpkit.yaml           the configuration as run (every default written out)
      dataset.db            every configuration and label (shared with the active-learning loop)
      configs/              initial.extxyz (training pool), test.extxyz (independent test set), as sampled
      models/initial/       the first committee;  models/final/ the committee production MD used
      validation/initial/   checklist of the first committee; validation/final/ of the final one
      state.json, config.json, initial.extxyz, iter-NNN/, baseline/, report/
                            the active-learning loop's own files (mlpkit.workflows.active_learning), in the
                            same directory so that it works on the same dataset store
      production/           production.traj, uncertain.extxyz, md.png, properties/ (spectrum or RDF, MSD)
      speed.json            the ns/day table
      compare/              a committee of several families: each family alone on the test set (compare.json)
      report.html           the project report; summary.json the numbers of the summary table

Resuming (the engine of every workflow, :mod:`mlpkit.workflows.engine`): a stage is recorded in
``pipeline-state.json`` only after all its outputs are written, with a
fingerprint of the configuration sections it (and every stage before it) depends on. Rerunning skips the
finished stages whose fingerprint still matches; changing, say, ``production.temperature`` reruns production,
speed and report only. Labels are never computed twice: they live in the dataset store, which skips known
(configuration, method) pairs and is written one finished calculation at a time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlpkit.config.active_learning import PhysicsSettings
from mlpkit.config.domain import DomainSection
from mlpkit.config.project import ProjectConfig
from mlpkit.errors import InputError
from mlpkit.files import atomic_write_json
from mlpkit.workflows.engine import Step, WorkflowState, config_section, cumulative_fingerprints, run_step
from mlpkit.workflows.project.compare import Compare
from mlpkit.workflows.project.context import STATE_FILE, ProjectRun
from mlpkit.workflows.project.label import Label
from mlpkit.workflows.project.learn import Learn
from mlpkit.workflows.project.production import Production
from mlpkit.workflows.project.report import Report
from mlpkit.workflows.project.sample import Sample
from mlpkit.workflows.project.speed import Speed
from mlpkit.workflows.project.summary import STAGES, print_summary, project_summary
from mlpkit.workflows.project.train import Train
from mlpkit.workflows.project.validate import Validate

#: the stages, in order; each step's ``sections`` are the configuration its results depend on (cumulatively:
#: a stage also depends on the sections of every earlier one)
STEPS: tuple[Step, ...] = (Sample(), Label(), Train(), Validate(), Learn(), Production(), Speed(), Compare(), Report())

#: settings added after runs already existed: left out of the fingerprints while at their default, so that
#: upgrading mlpkit does not invalidate finished stages that ran with the behaviour the default keeps
LATER_DEFAULTS = {
    "active_learning.explore.bias": 0.0,
    "active_learning.explore.bias_width": 0.01,
    "active_learning.baseline.initial": "auto",
    "model.fit.keep": "best",
    "model.fit.valid_fraction": 0.1,
    "model.fit.weight_decay": 0.0,
    "model.fit.grad_clip": 10.0,
    "model.fit.checkpoint_every": 50,
    "model.committee.warm_start": True,
    "model.committee.members": None,
    "validation.max_force_reference_factor": 1.5,
    "active_learning.explore.pressure": 1.0,
    "active_learning.explore.barostat_time": 1000.0,
    "sampling.pressure": 1.0,
    "sampling.barostat_time": 1000.0,
    "sampling.equilibration": 200,
    "production.pressure": 1.0,
    "production.barostat_time": 1000.0,
    "production.viscosity": 0.89e-3,
    "production.structure": None,
    "production.supercell": None,
    "production.watchdog.density": "auto",
    "production.watchdog.density_margin": 0.1,
    "production.segment_steps": 100_000,
    "execution.train_processes": None,
    "active_learning.baseline.points": "curve",
    "model.fit.force_relative": 0.0,
    "domain": DomainSection().model_dump(mode="json"),
    "active_learning.physics": PhysicsSettings().model_dump(mode="json"),
}


def stage_fingerprints(cfg: ProjectConfig) -> dict[str, str]:
    """A hash per stage of the configuration it depends on, including everything earlier stages depend on."""
    data = cfg.to_dict()
    for dotted, default in LATER_DEFAULTS.items():
        *parents, key = dotted.split(".")
        node = config_section(data, ".".join(parents)) if parents else data
        if node.get(key, default) == default:
            node.pop(key, None)
    return cumulative_fingerprints(STEPS, data)


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
    as_run = _previous_settings(run_dir / "mlpkit.yaml")
    state = WorkflowState(run_dir / STATE_FILE)
    if restart_from:
        state.forget(STAGES[STAGES.index(restart_from) :])
    fingerprints = stage_fingerprints(cfg)
    # a stage whose inputs changed invalidates itself and everything after it
    for stage in STAGES:
        rec = state.steps.get(stage)
        if rec and rec.get("fingerprint") != fingerprints[stage]:
            _refuse_stale_data(cfg, stage, as_run)
            if show:
                console.print(f"[yellow]configuration changed for '{stage}': rerunning it and every later stage[/]")
            state.forget(STAGES[STAGES.index(stage) :])
            break
    # only now: a refused change must not become the "configuration as run" the next attempt compares against
    cfg.write_yaml(run_dir / "mlpkit.yaml", header=f"configuration as run (source: {cfg.source})")

    run = ProjectRun(cfg=cfg, state=state, progress=progress, console=show)
    t_all = time.perf_counter()
    if show:
        console.rule(f"[bold]mlpkit run: {cfg.project.name}[/]")
        console.print(f"run directory: {run_dir}", highlight=False)
    for i, step in enumerate(STEPS, 1):
        stage = step.name
        header = f"[bold cyan][{i}/{len(STEPS)}] {stage}[/] – {step.description}"
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
        run_step(step, run, state, fingerprints[stage])
        seconds = state.seconds(stage)
        if show:
            console.print(f"    [green]✓ {stage}[/] in {seconds:.1f} s", highlight=False)

    summary = project_summary(run)
    summary["seconds_this_run"] = time.perf_counter() - t_all
    atomic_write_json(run_dir / "summary.json", summary)
    if show:
        print_summary(summary, console)
    return summary


def _previous_settings(path: Path) -> dict | None:
    """The configuration the run directory was last run with (every default written out), if readable."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _changed_keys(old: dict | None, new: dict, sections: tuple[str, ...]) -> list[str]:
    """``key: old → new`` for every setting of ``sections`` that differs between two configuration dicts."""
    out: list[str] = []

    def walk(a, b, prefix: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{prefix}.{key}")
        elif a != b:
            out.append(f"{prefix}: {a!r} → {b!r}")

    if old is None:
        return out
    for dotted in sections:
        node_old, node_new = old, new
        for part in dotted.split("."):
            node_old = node_old.get(part) if isinstance(node_old, dict) else None
            node_new = node_new.get(part) if isinstance(node_new, dict) else None
        walk(node_old, node_new, dotted)
    return out


#: learn-stage settings that re-open a finished active-learning loop at its last iteration instead of invalidating
#: it (a subset of the loop's own ``RESUMABLE_CHANGES``): a tighter stop target, more iterations, a bigger budget
EXTENDS_LEARNING = (
    "active_learning.max_iterations",
    "active_learning.label_budget",
    "active_learning.stop",
    "active_learning.baseline",
)


def _only_extends_learning(keys: list[str]) -> bool:
    """Whether every changed ``key: old → new`` of the learn stage is one the loop takes on resume."""
    paths = [k.split(": ", 1)[0] for k in keys]
    return bool(paths) and all(any(p == e or p.startswith(e + ".") for e in EXTENDS_LEARNING) for p in paths)


def _refuse_stale_data(cfg: ProjectConfig, stage: str, as_run: dict | None = None) -> None:
    """Some changes cannot be applied to a run directory that already holds their results: new sampling settings
    would mix old and new configurations in the training data, and the active-learning loop refuses to resume with
    other settings. Say so before anything runs. A new stop target, iteration cap, label budget or baseline is the
    exception: the loop goes on from where it stopped (:func:`mlpkit.workflows.active_learning.stop.reconsider_stop`).
    """
    run_dir = cfg.run_dir
    sections = STEPS[STAGES.index(stage)].sections
    changed = ", ".join(sections)
    keys = _changed_keys(as_run, cfg.to_dict(), sections)
    if stage == "learn" and _only_extends_learning(keys):
        return
    if keys:
        # name the settings: after an upgrade they are often defaults that changed, which the file never mentioned
        changed += "; " + "; ".join(keys[:8]) + (" ..." if len(keys) > 8 else "")
        changed += (
            " (a value you did not write is a default of this mlpkit version: write the old one into your file "
            "to keep this run)"
        )
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
