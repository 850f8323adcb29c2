"""The declared domain of a project: its config section (defaults, refusals, fingerprints of old configs), what it
drives (exploration temperatures, the test set, the loop's physics settings), and a tiny end-to-end run declaring two
temperatures whose report gives the errors per temperature and the physics checklist's rounds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlpkit.config.project import ProjectConfig, commented_yaml
from mlpkit.errors import InputError
from mlpkit.labelers import make_labeler
from mlpkit.workflows.engine import WorkflowState
from mlpkit.workflows.project.context import ProjectRun
from mlpkit.workflows.project.learn import active_learning_config
from mlpkit.workflows.project.runner import stage_fingerprints
from mlpkit.workflows.project.sample import domain_test_set

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "tiny" / "mlpkit.yaml"


def test_defaults_keep_old_configs_as_they_were():
    cfg = ProjectConfig.from_yaml(TINY)
    assert cfg.domain.temperatures is None and not cfg.domain.declared
    assert cfg.domain.test_frames == 50 and cfg.domain.test_timestep == 0.5 and cfg.domain.test_stride == 20
    # not declared: the temperatures the run already samples at, exploration unchanged
    assert cfg.domain_temperatures == [500.0]
    assert cfg.exploration_temperatures() == [500.0]
    # an old file and the same file with the new sections written out at their defaults fingerprint alike, so run
    # directories of earlier versions resume without redoing finished stages
    data = yaml.safe_load(TINY.read_text())
    spelled = {**data, "domain": {"temperatures": None, "test_frames": 50}}
    spelled["active_learning"] = {**data["active_learning"], "physics": {"max_rounds": 2}}
    assert stage_fingerprints(ProjectConfig.from_dict(spelled, base_dir=TINY.parent)) == stage_fingerprints(cfg)
    declared = ProjectConfig.from_dict({**data, "domain": {"temperatures": [300, 800]}}, base_dir=TINY.parent)
    assert stage_fingerprints(declared)["sample"] != stage_fingerprints(cfg)["sample"]
    assert "\ndomain:" in commented_yaml(cfg)  # `mlpkit init` and the run's own copy document the section


def test_declared_domain_sets_exploration_and_is_sorted():
    cfg = ProjectConfig.from_dict({"domain": {"temperatures": [1000, 300]}})
    assert cfg.domain.temperatures == [300.0, 1000.0] and cfg.domain_temperatures == [300.0, 1000.0]
    assert cfg.exploration_temperatures() == [300.0, 1000.0]  # the default explore temperature is replaced
    both = ProjectConfig.from_dict(
        {"domain": {"temperatures": [300, 1000]}, "active_learning": {"explore": {"temperatures": [500]}}}
    )
    assert both.exploration_temperatures() == [300.0, 500.0, 1000.0]  # written explicitly: kept as well


@pytest.mark.parametrize(
    ("domain", "words"),
    [
        ({"temperatures": [-300]}, "domain.temperatures: temperatures must be > 0 K"),
        ({"temperatures": []}, "declare at least one temperature"),
        ({"temperatures": [300, 300.0]}, "listed twice"),
        ({"temperatures": "hot"}, "domain.temperatures"),
        ({"test_frames": 0}, "domain.test_frames"),
        ({"test_stride": 0}, "domain.test_stride"),
        ({"pressures": [1.0]}, "domain.pressures: unknown key"),
    ],
)
def test_bad_domain_is_refused_with_its_key(domain, words):
    with pytest.raises(InputError, match=words):
        ProjectConfig.from_dict({"domain": domain})


def test_bad_physics_settings_are_refused_with_their_key():
    with pytest.raises(InputError, match=r"active_learning\.physics\.labels_per_check"):
        ProjectConfig.from_dict({"active_learning": {"physics": {"labels_per_check": 0}}})
    with pytest.raises(InputError, match="not checklist settings"):
        ProjectConfig.from_dict({"active_learning": {"physics": {"validation": {"max_forse": 3}}}})


def test_loop_settings_follow_the_domain_and_the_checklist(tmp_path):
    cfg = ProjectConfig.from_dict(
        {
            "project": {"run_dir": str(tmp_path / "run")},
            "reference": {"method": "gfn2"},
            "domain": {"temperatures": [300, 1000]},
            "validation": {"nve_steps": 300},
            "active_learning": {"physics": {"validation": {"max_force": 20.0}, "max_rounds": 1}},
        }
    )
    run = ProjectRun(cfg=cfg, state=WorkflowState(tmp_path / "state.json"), progress=False)
    run.state.mark("label", {"train": 16, "valid": 4})  # what the label stage leaves for the loop
    al = active_learning_config(run)
    assert al.explore.temperatures == [300.0, 1000.0]
    assert al.physics.enabled and al.physics.max_rounds == 1
    # the project's checklist, the loop's overrides on top
    assert al.physics.validation["nve_steps"] == 300 and al.physics.validation["max_force"] == 20.0
    off = ProjectConfig.from_dict({**cfg.to_dict(), "validation": {"enabled": False}})
    assert not active_learning_config(ProjectRun(cfg=off, state=run.state, progress=False)).physics.enabled


def test_domain_test_set_is_equilibrated_and_strided(tmp_path):
    cfg = ProjectConfig.from_dict(
        {
            "project": {"run_dir": str(tmp_path / "run"), "seed": 3},
            "system": {"structure": "H2O"},
            "reference": {"method": "gfn2"},
            "domain": {"temperatures": [300, 900], "test_frames": 4, "test_equilibration": 25, "test_stride": 10},
        }
    )
    run = ProjectRun(cfg=cfg, state=WorkflowState(tmp_path / "state.json"), progress=False)
    frames = domain_test_set(run, make_labeler("gfn2"))
    assert [f.info["source"] for f in frames] == ["test-md-300K"] * 4 + ["test-md-900K"] * 4
    for k in (0, 4):
        steps = [int(f.info["step"]) for f in frames[k : k + 4]]
        assert steps == [30, 40, 50, 60]  # the first frame after 25 steps of equilibration, then every 10 steps
        assert all(f.info["time_fs"] == 0.5 * s for f, s in zip(frames[k : k + 4], steps, strict=True))
    # independent runs: the two temperatures do not share a trajectory
    assert not (frames[0].positions == frames[4].positions).all()


def test_tiny_project_declaring_two_temperatures_reports_errors_per_temperature(tmp_path):
    """examples/tiny with a declared domain of 300 and 800 K, end to end (GFN2-xTB labels)."""
    from mlpkit.workflows.project.runner import run_project

    data = yaml.safe_load(TINY.read_text())
    data["domain"] = {"temperatures": [300, 800], "test_frames": 4, "test_equilibration": 40, "test_stride": 10}
    data["active_learning"]["physics"] = {"max_rounds": 1, "labels_per_check": 1, "max_labels": 3}
    data["model"]["fit"]["epochs"] = 30
    data["production"]["steps"] = 40
    (tmp_path / "mlpkit.yaml").write_text(yaml.safe_dump(data))
    summary = run_project(tmp_path / "mlpkit.yaml", progress=False)
    assert summary
    run_dir = tmp_path / "run"
    state = WorkflowState(run_dir / "pipeline-state.json")
    learn = state.result("learn")
    rows = learn["per_temperature"]
    assert [r["temperature"] for r in rows] == [300.0, 800.0] and [r["n"] for r in rows] == [4, 4]
    assert all(r["worst"] and r["worst"][0]["min_distance"] > 0.5 for r in rows)
    assert (run_dir / "validation" / "final" / "per_temperature.json").exists()
    # the loop ran the checklist when it stopped; every row says which check and how many labels
    assert learn["physics_rounds"], "the physics checklist did not run inside the loop"
    assert all({"check", "labels", "before", "after"} <= set(r) for r in learn["physics_rounds"])
    al_state = WorkflowState(run_dir / "state.json")
    assert any(k.endswith(".physics") for k in al_state.steps)
    html = (run_dir / "report.html").read_text()
    assert "Errors over the declared domain" in html and "Physics in the stopping rule" in html
    assert "Declared domain: 300, 800 K" in html and "test frame" in html
