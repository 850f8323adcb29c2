"""The one resume engine of every workflow: steps, their fingerprints, and a state file written atomically.

A workflow is a sequence of :class:`Step` objects. Each step has a name, a one-line description, the
configuration sections its results depend on, and ``run(ctx) -> dict`` returning a small JSON-able result. A
step is recorded in the workflow's state file only after all its outputs are written, with a fingerprint of
the configuration it depends on; running the workflow again skips the finished steps whose fingerprint still
matches and reads their results back.

State file (``pipeline-state.json`` of ``mlpkit run``, ``state.json`` of ``mlpkit learn``), format version 2::

    {"version": 2,
     "steps": {NAME: {"fingerprint": str | null, "seconds": float, "finished": "Y-m-d H:M:S", "result": {...}}},
     "values": {KEY: small JSON value}}

Version-1 files of both workflows (``{"version": 1, "stages": {...}}`` of the project pipeline and
``{"version": 1, "done": {...}, "finished": ..., ...}`` of active learning) are read and rewritten as version 2
on the next write, so run directories of earlier mlpkit versions resume. A file this version cannot read (a
later format, or not a state file at all) is refused with the directory and what to do.

Every file is written to a temporary name and renamed (``os.replace``), so a killed process leaves either the
old file or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mlpkit.errors import InputError
from mlpkit.files import atomic_write_json, jsonable, read_json

STATE_VERSION = 2


class Step:
    """One unit of a workflow: ``run(ctx)`` does the work, writes its files and returns a small JSON result.

    name:         key of the step in the state file
    description:  one line for progress output
    sections:     dotted configuration sections the step's results depend on (for its fingerprint)
    """

    name: str = ""
    description: str = ""
    sections: tuple[str, ...] = ()

    def run(self, ctx: Any) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def config_section(data: dict, dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node[part]
    return node


def has_section(data: dict, dotted: str) -> bool:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def cumulative_fingerprints(steps: Sequence[Step], config: dict) -> dict[str, str]:
    """A hash per step of the configuration sections it and every earlier step depend on. A section absent from
    ``config`` (a setting added later, left out while at its default) does not enter the hash."""
    out, acc = {}, []
    for step in steps:
        acc += [(s, config_section(config, s)) for s in step.sections if has_section(config, s)]
        out[step.name] = hashlib.sha256(json.dumps(acc, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return out


class WorkflowState:
    """The state file of one run directory: finished steps (fingerprint, seconds, result) and a few values."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.run_dir = self.path.parent
        self.data: dict = {"version": STATE_VERSION, "steps": {}, "values": {}}
        if self.path.exists():
            try:
                raw = read_json(self.path)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # cannot happen with atomic writes
                raise InputError(
                    f"{self.path} is corrupt ({exc}); the run in {self.run_dir} cannot be resumed: delete the file "
                    "to redo every step, or choose a new run directory"
                ) from exc
            self.data = _upgrade(raw, self.path)

    # -- steps ---------------------------------------------------------------------------------------------

    @property
    def steps(self) -> dict[str, dict]:
        return self.data["steps"]

    def done(self, name: str, fingerprint: str | None = None) -> bool:
        """Whether ``name`` finished (with this ``fingerprint``, when one is given)."""
        rec = self.steps.get(name)
        if rec is None:
            return False
        return fingerprint is None or rec.get("fingerprint") == fingerprint

    def result(self, name: str) -> dict:
        return (self.steps.get(name) or {}).get("result", {})

    def seconds(self, name: str) -> float:
        return float((self.steps.get(name) or {}).get("seconds", 0.0))

    def mark(self, name: str, result: dict, *, fingerprint: str | None = None, seconds: float = 0.0) -> None:
        """Record ``name`` as finished with its small JSON-able ``result`` and persist atomically."""
        self.steps[name] = {
            "fingerprint": fingerprint,
            "seconds": seconds,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "result": jsonable(result),
        }
        self.save()

    def forget(self, names: Iterable[str] = (), *, prefix: str | None = None, values: Iterable[str] = ()) -> None:
        """Drop the steps ``names``, every step whose name starts with ``prefix`` and the ``values`` keys, in one
        atomic write."""
        for name in names:
            self.steps.pop(name, None)
        if prefix is not None:
            self.data["steps"] = {k: v for k, v in self.steps.items() if not k.startswith(prefix)}
        for key in values:
            self.data["values"].pop(key, None)
        self.save()

    # -- values --------------------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        return self.data["values"].get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data["values"][key] = jsonable(value)
        self.save()

    def save(self) -> None:
        atomic_write_json(self.path, self.data)


def run_step(step: Step, ctx: Any, state: WorkflowState, fingerprint: str | None = None) -> dict:
    """``step.run(ctx)`` unless it finished earlier (with ``fingerprint``); returns its result either way."""
    if state.done(step.name, fingerprint):
        return state.result(step.name)
    t0 = time.perf_counter()
    result = step.run(ctx)
    state.mark(step.name, result, fingerprint=fingerprint, seconds=time.perf_counter() - t0)
    return result


def _upgrade(raw: Any, path: Path) -> dict:
    """The version-2 form of a state file's contents (version-1 files of either workflow are converted)."""
    refuse = (
        f"choose a new run directory, or delete {path.parent} to start over (labels already computed can be "
        "copied with `mlpkit data export` / `mlpkit data import`)"
    )
    if not isinstance(raw, dict):
        raise InputError(f"{path} is not an mlpkit state file, so {path.parent} cannot be resumed: {refuse}")
    version = raw.get("version")
    if version == STATE_VERSION and isinstance(raw.get("steps"), dict):
        raw.setdefault("values", {})
        return raw
    if version == 1 and isinstance(raw.get("stages"), dict):  # mlpkit run's pipeline-state.json
        return {"version": STATE_VERSION, "steps": dict(raw["stages"]), "values": {}}
    if version == 1 and isinstance(raw.get("done"), dict):  # mlpkit learn's state.json
        steps = {k: {"fingerprint": None, "seconds": 0.0, "result": v} for k, v in raw["done"].items()}
        values = {k: v for k, v in raw.items() if k not in ("version", "done")}
        return {"version": STATE_VERSION, "steps": steps, "values": values}
    if isinstance(version, int) and version > STATE_VERSION:
        raise InputError(
            f"{path} was written by a newer mlpkit (state format {version}; this version reads up to "
            f"{STATE_VERSION}), so {path.parent} cannot be resumed here: run it with that mlpkit, or {refuse}"
        )
    raise InputError(
        f"{path} has an unknown state format (version {version!r}), so {path.parent} cannot be resumed: {refuse}"
    )
