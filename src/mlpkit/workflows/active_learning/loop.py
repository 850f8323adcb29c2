"""The active-learning loop: label a few, train a committee, explore, pick the uncertain, label, repeat.

    initial set → test set → [train committee → explore (MD walkers) → stop? → (physics checklist: targeted
    labels and on, if a fixable check fails) → select (trust window, top-k, diversity) → label] × iterations →
    random baseline → report

Each step is an object of :mod:`mlpkit.workflows.active_learning` run through the resume engine
(:mod:`mlpkit.workflows.engine`): it is recorded in ``state.json`` when it has finished, and running again with
the same run directory continues after the last finished step (the layout of the directory is described in
:mod:`mlpkit.workflows.active_learning.context`). Reference calculations go through the execution layer
(:func:`mlpkit.execution.label_pending`), which stores each label as it arrives and records failures (they are
skipped, and counted in the summary).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlpkit.config.active_learning import ActiveLearningConfig
from mlpkit.workflows.active_learning.baseline import run_baseline
from mlpkit.workflows.active_learning.context import ALRun, Log
from mlpkit.workflows.active_learning.explore import Explore
from mlpkit.workflows.active_learning.initial import InitialSet
from mlpkit.workflows.active_learning.label import Label
from mlpkit.workflows.active_learning.physics import PhysicsCheck
from mlpkit.workflows.active_learning.report import write_report
from mlpkit.workflows.active_learning.select import Select
from mlpkit.workflows.active_learning.stop import error_target_missed, reconsider_stop, should_stop
from mlpkit.workflows.active_learning.summary import ALSummary, summary
from mlpkit.workflows.active_learning.testset import TestSet
from mlpkit.workflows.active_learning.train import Train


def run_loop(run: ALRun) -> ALSummary:
    """Run (or resume) every step of the run ``run``; returns its summary."""
    t0 = time.perf_counter()
    run.step(InitialSet())
    test = TestSet()
    record = test.run(run)  # loads run.test on every start, labels it once
    if not run.state.done(test.name):
        run.state.mark(test.name, record)
    i = 0
    reason = run.state.get("stopped_because", "")
    if reason:
        i, reason = reconsider_stop(run, reason)
    while not reason:
        metrics = run.step(Train(i))
        run.step(Explore(i, metrics["trust"]))
        reason = should_stop(run, i, metrics)
        if reason and run.cfg.physics.enabled:
            # validation is part of the stopping rule: a failed check that sampling can fix labels targeted
            # configurations and the loop trains again (capped by physics.max_rounds / max_labels)
            physics = run.step(PhysicsCheck(i))
            if physics["continue"]:
                i, reason = i + 1, ""
                continue
            reason += f"; physics checklist: {physics['verdict']}"
        if reason:
            run.state.set("stopped_because", reason)
            run.state.set("final_iteration", i)
            break
        # test error above the stop target: a calm committee is wrong there, so Select fills up with uncertain frames
        fill = error_target_missed(run.cfg.stop, metrics.get("test"))
        selection = run.step(Select(i, metrics["trust"], fill_below_target=fill))
        run.step(Label(i))
        if selection["n_selected"] == 0:
            run.log(f"iteration {i}: nothing to label (all explored frames trusted or discarded)")
        i += 1
    run.log(f"stopped: {reason}")
    final = int(run.state.get("final_iteration", i))
    baseline = run_baseline(run, final) if run.cfg.baseline.enabled else None
    result = summary(run, final, reason, baseline, time.perf_counter() - t0)
    write_report(run.run_dir, result)
    run.state.set("finished", True)
    return result


def run_active_learning(
    config: ActiveLearningConfig | str | os.PathLike,
    run_dir: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    log: Log | None = None,
) -> ALSummary:
    """Run (or resume) active learning as ``config`` says, in ``run_dir`` (default ``runs/<name>``).

    ``config`` may be a path to a YAML file. Returns the summary; the full record is in ``run_dir``.
    """
    if not isinstance(config, ActiveLearningConfig):
        config = ActiveLearningConfig.from_yaml(config)
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / config.name
    if config.execution.threads:
        import torch

        torch.set_num_threads(config.execution.threads)
    return run_loop(ALRun(config, run_dir, progress, log or (lambda msg: None)))
