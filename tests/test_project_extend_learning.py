"""A project whose active learning has run may get a tighter stop target, more iterations or a bigger budget and go
on from where the loop stopped; any other change of the learn stage's settings is refused before anything runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mlpkit.config import ProjectConfig
from mlpkit.errors import InputError
from mlpkit.workflows.project.runner import _refuse_stale_data

TINY = Path(__file__).resolve().parents[1] / "examples" / "tiny" / "mlpkit.yaml"


def _config(tmp_path: Path, change: dict | None = None) -> ProjectConfig:
    data = yaml.safe_load(TINY.read_text())
    for dotted, value in (change or {}).items():
        *parents, key = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = value
    path = tmp_path / "mlpkit.yaml"
    path.write_text(yaml.safe_dump(data))
    return ProjectConfig.from_yaml(path)


@pytest.fixture
def learned(tmp_path):
    """(settings the run had, its directory) for a run directory whose active learning has started."""
    shutil.copy(TINY, tmp_path / "mlpkit.yaml")
    cfg = _config(tmp_path)
    cfg.run_dir.mkdir(parents=True)
    (cfg.run_dir / "state.json").write_text("{}")  # the loop's state: active learning has run here
    return cfg.to_dict(), tmp_path


@pytest.mark.parametrize(
    "change",
    [
        {"active_learning.stop.force_mae": 0.001},
        {"active_learning.max_iterations": 40},
        {"active_learning.label_budget": 500, "active_learning.stop.patience": 5},
    ],
)
def test_a_tighter_target_or_bigger_budget_goes_on(learned, change):
    as_run, tmp_path = learned
    cfg = _config(tmp_path, change)
    assert cfg.to_dict() != as_run
    _refuse_stale_data(cfg, "learn", as_run)  # no error: the loop reconsiders its stop on resume


@pytest.mark.parametrize(
    "change",
    [
        {"active_learning.select.top_k": 3},
        {"active_learning.stop.force_mae": 0.001, "active_learning.explore.steps": 7},
    ],
)
def test_other_learn_settings_are_refused(learned, change):
    as_run, tmp_path = learned
    with pytest.raises(InputError, match=r"active learning .* started with other settings"):
        _refuse_stale_data(_config(tmp_path, change), "learn", as_run)


def test_without_the_earlier_settings_a_change_is_refused(learned):
    _, tmp_path = learned
    with pytest.raises(InputError, match="started with other settings"):
        _refuse_stale_data(_config(tmp_path, {"active_learning.stop.force_mae": 0.001}), "learn", None)


def test_a_refused_change_leaves_the_settings_as_run(tmp_path):
    """The run directory's mlpkit.yaml is what the next attempt compares against: a refused run must not replace it
    (else the second attempt of the same change finds nothing changed and names no setting)."""
    import json

    from mlpkit.workflows.project.runner import run_project

    cfg = _config(tmp_path)
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True)
    as_run = run_dir / "mlpkit.yaml"
    as_run.write_text("# configuration as run\n" + yaml.safe_dump(cfg.to_dict()))
    before = as_run.read_text()
    (run_dir / "dataset.db").write_bytes(b"")
    step = {"fingerprint": "an older sampling", "seconds": 1.0, "finished": "2026-12-01 00:00:00", "result": {}}
    (run_dir / "pipeline-state.json").write_text(json.dumps({"version": 2, "steps": {"sample": step}}))
    with pytest.raises(InputError, match="sampled with other settings"):
        run_project(tmp_path / "mlpkit.yaml", progress=False)
    assert as_run.read_text() == before
