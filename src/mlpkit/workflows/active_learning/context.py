"""The on-disk state of an active-learning run and the context its steps share: one directory, resumable after
any crash.

Layout of ``RUN_DIR``::

    config.json          the validated configuration (a changed config on resume is refused, see below)
    dataset.db           every configuration and label (SQLite; test rows have split 'test')
    state.json           finished steps and their small results (:class:`mlpkit.workflows.engine.WorkflowState`)
    initial.extxyz       the initial configurations (before labelling)
    test-set.extxyz      the labelled test set (unless test.cache points elsewhere)
    iter-000/            model/ (the committee), calibration.json, metrics.json, explore/ (trajectories),
                         explored.extxyz, explore.json, selected.extxyz, selection.json, labels.json
    baseline/            pool.extxyz, baseline.db, point-NNN/ models and metrics
    report/              summary.json, summary.md, learning_curve.png, calibration plots

Every file is written to a temporary name and renamed (``os.replace``), so a killed process leaves either the
old file or the new one. A step is marked finished in ``state.json`` only after all its files exist; on resume
finished steps are skipped and their outputs read back. Labels live in the dataset, which the execution layer
writes one finished calculation at a time, and which never stores a (configuration, method) twice: a step
killed mid-labelling resumes with exactly the configurations still pending. The calculations in flight when
the process dies are lost and run again; so is one that had finished in the few milliseconds before its
result was committed (the only window in which a completed reference calculation can be repeated).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ase import Atoms

from mlpkit.config.active_learning import ActiveLearningConfig
from mlpkit.data.dataset import Dataset
from mlpkit.errors import InputError
from mlpkit.files import atomic_write_json, read_json
from mlpkit.workflows.engine import Step, WorkflowState, run_step

Log = Callable[[str], None]

STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
#: settings that may change between a crash and a resume without invalidating finished work
RESUMABLE_CHANGES = ("max_iterations", "label_budget", "stop", "physics", "baseline", "execution", "name")
#: member seeds of iteration i are seed + ITER_SEED_STRIDE * i + member
ITER_SEED_STRIDE = 7919


class ALRun:
    """What every step of a run needs: the configuration, the run directory, its state, the labelers, the
    dataset store and the labelled test set."""

    def __init__(self, cfg: ActiveLearningConfig, run_dir: Path, progress: bool, log: Log):
        from mlpkit.data.structures import read_structures
        from mlpkit.labelers import make_labeler
        from mlpkit.sampling.driver import make_driver

        self.cfg = cfg
        self.run_dir = run_dir
        self.progress = progress
        self.log = log
        run_dir.mkdir(parents=True, exist_ok=True)
        check_config_unchanged(
            run_dir,
            cfg.model_dump(mode="json"),
            normalise=lambda old: ActiveLearningConfig.model_validate(old).model_dump(mode="json"),
        )
        self.state = WorkflowState(run_dir / STATE_FILE)
        self.labeler = make_labeler(dict(cfg.reference))
        # a cheap method, or any potential (pretrained or a saved model): nothing of the reference spent on sampling
        self.driver = make_driver(dict(cfg.driver)) if cfg.driver is not None else self.labeler
        self.method = self.labeler.method
        self.structure = read_structures(cfg.structure)[0]
        self.labeler.check(self.structure)
        self.driver.check(self.structure)  # a potential without parameters for an element fails before any MD
        self.dataset = Dataset(run_dir / "dataset.db")
        self.test: list[Atoms] = []

    def step(self, step: Step) -> dict:
        """Run ``step`` unless it finished earlier (then its recorded result)."""
        return run_step(step, self, self.state)

    def iter_dir(self, i: int) -> Path:
        return self.run_dir / f"iter-{i:03d}"

    def labelled(self) -> tuple[list[Atoms], list[Atoms]]:
        train = self.dataset.to_atoms(method=self.method, split="train")
        valid = self.dataset.to_atoms(method=self.method, split="valid")
        return train, valid

    def load_committee(self, i: int):
        from mlpkit.potentials.registry import load_potential

        return load_potential(self.iter_dir(i) / "model")


def check_config_unchanged(run_dir: Path, config_dict: dict, normalise: Callable[[dict], dict] | None = None) -> None:
    """Write the config on a fresh run; on resume refuse changes that would invalidate finished work.

    normalise: maps the stored config through the current schema, so settings added in a later mlpkit version
    take their defaults (the behaviour the old run had) instead of counting as changed.
    """
    path = run_dir / CONFIG_FILE
    if not path.exists():
        atomic_write_json(path, config_dict)
        return
    old = read_json(path)
    if normalise is not None:
        try:
            old = normalise(old)
        except ValueError:  # a setting the current schema no longer knows: compare as stored
            pass
    changed = sorted(
        k
        for k in set(old) | set(config_dict)
        if k not in RESUMABLE_CHANGES and _differs(old.get(k), config_dict.get(k))
    )
    if changed:
        raise InputError(
            f"{run_dir} was started with different settings ({', '.join(changed)} changed); resume it with the "
            f"same config, or choose a new --run-dir. Only {', '.join(RESUMABLE_CHANGES)} may change on resume."
        )
    if old != config_dict:
        atomic_write_json(path, config_dict)


def _differs(old: Any, new: Any) -> bool:
    """Deep comparison where a key the old config lacks counts as equal when its new value is None (a setting
    added in a later mlpkit version whose default is 'off')."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in set(old) | set(new):
            if k not in old and new.get(k) is None:
                continue
            if _differs(old.get(k), new.get(k)):
                return True
        return False
    return old != new
