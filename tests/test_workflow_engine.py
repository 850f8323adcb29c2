"""The resume engine of every workflow: steps with fingerprints, one state file format (version 2), and state
files of earlier mlpkit versions read (version 1 of ``mlpkit run`` and of ``mlpkit learn``) or refused with the
run directory and what to do."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlpkit.errors import InputError
from mlpkit.workflows.engine import STATE_VERSION, Step, WorkflowState, cumulative_fingerprints, run_step

ROOT = Path(__file__).resolve().parents[1]


class Count(Step):
    def __init__(self, name: str, sections=()):
        self.name, self.sections, self.calls = name, tuple(sections), 0

    def run(self, ctx) -> dict:
        self.calls += 1
        return {"calls": self.calls, "ctx": ctx}


def test_steps_run_once_per_fingerprint_and_state_is_atomic(tmp_path):
    path = tmp_path / "state.json"
    state = WorkflowState(path)
    step = Count("a")
    assert run_step(step, 1, state, "f1") == {"calls": 1, "ctx": 1}
    assert run_step(step, 2, WorkflowState(path), "f1") == {"calls": 1, "ctx": 1}  # read back, not rerun
    assert step.calls == 1
    assert run_step(step, 3, state, "f2")["calls"] == 2  # another fingerprint: rerun
    state.set("stopped_because", "converged")
    again = WorkflowState(path)
    assert again.done("a") and again.done("a", "f2") and not again.done("a", "f1")
    assert again.get("stopped_because") == "converged" and again.seconds("a") >= 0
    assert json.loads(path.read_text())["version"] == STATE_VERSION
    assert not list(tmp_path.glob(".state.json.*"))  # no temporary left behind
    again.mark("iter0.train", {"n": 1})
    again.mark("baseline.point0", {"n": 2})
    again.forget(["a"], prefix="baseline.point", values=["stopped_because"])
    final = WorkflowState(path)
    assert set(final.steps) == {"iter0.train"} and final.get("stopped_because") is None


def test_the_project_steps_are_the_stages_in_order():
    from mlpkit.workflows.project.runner import STEPS
    from mlpkit.workflows.project.summary import STAGES

    assert tuple(step.name for step in STEPS) == STAGES
    assert all(step.description for step in STEPS)
    # every step names the configuration it depends on; only compare reads nothing but earlier stages' outputs
    # (the final model and the test set), so it adds no section and leaves the report's fingerprint as it was
    assert [step.name for step in STEPS if not step.sections] == ["compare"]


def test_cumulative_fingerprints_match_the_pipeline_of_earlier_versions():
    """Stage fingerprints are computed as they were (so project directories of earlier versions resume)."""
    from mlpkit.config import ProjectConfig
    from mlpkit.workflows.project.runner import STEPS, stage_fingerprints

    cfg = ProjectConfig.from_yaml(ROOT / "examples" / "tiny" / "mlpkit.yaml")
    data = cfg.to_dict()
    for section, key in (("model", "fit"), ("model", "committee")):  # LATER_DEFAULTS at their defaults
        data[section][key].pop("keep" if key == "fit" else "warm_start", None)
    for key in ("bias", "bias_width"):
        data["active_learning"]["explore"].pop(key)
    data["active_learning"]["baseline"].pop("initial")
    data.pop("domain")  # the declared domain and the physics checklist came later: absent at their defaults
    data["active_learning"].pop("physics")
    data["validation"].pop("max_force_reference_factor")
    for dotted in (  # later still: NPT settings, side-by-side training, the search baseline, relative force weights
        "sampling.pressure",
        "sampling.barostat_time",
        "sampling.equilibration",
        "active_learning.explore.pressure",
        "active_learning.explore.barostat_time",
        "production.pressure",
        "production.barostat_time",
        "production.viscosity",
        "execution.train_processes",
        "active_learning.baseline.points",
        "model.fit.force_relative",
    ):
        *parents, key = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node.pop(key)
    # the algorithm of the version-1 pipeline, spelled out
    expected, acc = {}, []
    for step in STEPS:
        for dotted in step.sections:
            if dotted == "domain":  # a section the version-1 pipeline did not have
                continue
            node = data
            for part in dotted.split("."):
                node = node[part]
            acc.append((dotted, node))
        expected[step.name] = hashlib.sha256(json.dumps(acc, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert cumulative_fingerprints(STEPS, data) == expected
    got = stage_fingerprints(cfg)
    assert got["sample"] == expected["sample"] and got["label"] == expected["label"]


def test_version_1_state_of_mlpkit_run_is_read(tmp_path):
    path = tmp_path / "pipeline-state.json"
    rec = {"fingerprint": "abc", "seconds": 2.5, "finished": "2026-11-01 10:00:00", "result": {"initial": 10}}
    path.write_text(json.dumps({"version": 1, "stages": {"sample": rec}}))
    state = WorkflowState(path)
    assert state.done("sample", "abc") and not state.done("sample", "other")
    assert state.result("sample") == {"initial": 10} and state.seconds("sample") == 2.5
    state.mark("label", {"train": 8}, fingerprint="def")
    data = json.loads(path.read_text())
    assert data["version"] == STATE_VERSION and data["steps"]["sample"] == rec


def test_version_1_state_of_mlpkit_learn_is_read(tmp_path):
    path = tmp_path / "state.json"
    old = {
        "version": 1,
        "done": {"initial": {"labelled": 8}, "iter0.train": {"n_labels": 8, "trust": {"lower": 0.1}}},
        "finished": True,
        "stopped_because": "iteration cap (1) reached",
        "final_iteration": 1,
    }
    path.write_text(json.dumps(old))
    state = WorkflowState(path)
    assert state.done("initial") and state.result("iter0.train")["trust"] == {"lower": 0.1}
    assert state.get("stopped_because") == "iteration cap (1) reached" and state.get("final_iteration") == 1
    assert state.get("finished") is True and not state.done("iter0.explore")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ({"version": STATE_VERSION + 1, "steps": {}}, "newer mlpkit"),
        ({"version": 1, "something": {}}, "unknown state format"),
        ([1, 2, 3], "not an mlpkit state file"),
        ("{not json", "corrupt"),
    ],
)
def test_state_files_this_version_cannot_read_are_refused_with_what_to_do(tmp_path, content, why):
    run_dir = tmp_path / "old-run"
    run_dir.mkdir()
    path = run_dir / "state.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(InputError, match=why) as exc:
        WorkflowState(path)
    message = str(exc.value)
    assert str(run_dir) in message
    assert "new run directory" in message or "delete" in message


def test_learn_refuses_a_run_directory_it_cannot_read_before_any_work(tmp_path):
    from mlpkit.config.active_learning import ActiveLearningConfig
    from mlpkit.workflows.active_learning.loop import run_active_learning

    run_dir = tmp_path / "learn-run"
    run_dir.mkdir()
    (run_dir / "state.json").write_text(json.dumps({"version": STATE_VERSION + 1, "steps": {}}))
    cfg = ActiveLearningConfig.from_dict({"structure": "H2O", "reference": {"method": "emt"}, "driver": None})
    with pytest.raises(InputError, match="newer mlpkit") as exc:
        run_active_learning(cfg, run_dir, progress=False)
    assert str(run_dir) in str(exc.value)
    assert not (run_dir / "dataset.db").exists() and not (run_dir / "initial.extxyz").exists()
