"""The on-disk state of an active-learning run: one directory, resumable after any crash.

Layout of ``RUN_DIR``::

    config.json          the validated configuration (a changed config on resume is refused, see below)
    dataset.db           every configuration and label (SQLite; test rows have split 'test')
    state.json           finished steps and their small results, rewritten atomically after each step
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

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ase import Atoms

from mlpkit.errors import InputError
from mlpkit.files import atomic_write_images, atomic_write_json, atomic_write_text, read_json  # noqa: F401 (re-exported)

STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
#: settings that may change between a crash and a resume without invalidating finished work
RESUMABLE_CHANGES = ("max_iterations", "label_budget", "stop", "baseline", "execution", "name")


def read_images(path: str | os.PathLike) -> list[Atoms]:
    from ase.io import read

    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    return list(read(path, index=":", format="extxyz"))


class RunState:
    """``state.json`` of a run: which steps finished and what they reported."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / STATE_FILE
        if self.path.exists():
            try:
                self.data = read_json(self.path)
            except json.JSONDecodeError as exc:  # cannot happen with atomic writes, but say so if it does
                raise InputError(f"{self.path} is corrupt ({exc}); the run cannot be resumed") from exc
        else:
            self.data = {"version": 1, "done": {}, "finished": False}

    def done(self, step: str) -> bool:
        return step in self.data["done"]

    def result(self, step: str) -> dict:
        return self.data["done"].get(step, {})

    def mark(self, step: str, **result: Any) -> None:
        """Record ``step`` as finished (with a small JSON-able result) and persist atomically."""
        self.data["done"][step] = result
        self.save()

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def reopen(self, forget_prefix: str) -> None:
        """Clear the stop decision (``stopped_because``, ``final_iteration``, ``finished``) and every finished step
        whose name starts with ``forget_prefix``, in one atomic write."""
        for key in ("stopped_because", "final_iteration"):
            self.data.pop(key, None)
        self.data["finished"] = False
        self.data["done"] = {k: v for k, v in self.data["done"].items() if not k.startswith(forget_prefix)}
        self.save()

    def save(self) -> None:
        atomic_write_json(self.path, self.data)

    def iter_dir(self, i: int) -> Path:
        return self.run_dir / f"iter-{i:03d}"


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
