"""Potential-driven sampling: ``sampling.driver`` (project file) and ``driver`` (learn file) accept any potential —
a pretrained name or a saved model directory — besides a cheap method; a bad one is refused before any calculation,
and a small trained model really drives the initial MD, with no reference calculation spent on sampling."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mlpkit.config import ProjectConfig
from mlpkit.config.active_learning import ActiveLearningConfig
from mlpkit.errors import InputError
from mlpkit.sampling.driver import PotentialDriver, check_driver, driver_spec, make_driver

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
from al_helpers import tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A small BPNN trained for a few epochs on GFN2-xTB water: a potential that is not a method mlpkit knows."""
    from mlpkit.potentials.registry import create_potential
    from mlpkit.testing import labelled_water

    frames = labelled_water(24)
    pot = create_potential("bpnn", frames, hidden=[8], n_radial=6, n_angular=2, dtype="float64")
    pot.fit(frames[:20], frames[20:], epochs=30, batch_size=4, learning_rate=0.01)
    path = tmp_path_factory.mktemp("driver") / "water-bpnn"
    pot.save(path)
    return path


def _project(driver: str, base: Path) -> ProjectConfig:
    return ProjectConfig.from_dict({"system": {"structure": "H2O"}, "sampling": {"driver": driver}}, base_dir=base)


def test_a_driver_string_is_a_method_or_a_potential():
    assert driver_spec("gfn2") == {"method": "gfn2"}
    assert driver_spec("EMT") == {"method": "EMT"}
    assert driver_spec("chgnet:r2scan") == {"potential": "chgnet:r2scan"}
    assert driver_spec("models/final") == {"potential": "models/final"}
    with pytest.raises(InputError, match="exactly one"):
        driver_spec({"method": "gfn2", "potential": "chgnet"})
    assert isinstance(make_driver("chgnet"), PotentialDriver)
    assert make_driver("gfn2").method == "tblite:GFN2-xTB"


def test_project_file_accepts_a_model_directory_relative_to_the_file(tiny_model):
    cfg = _project(tiny_model.name, tiny_model.parent)  # relative to the project file's directory
    assert cfg.sampling.driver_spec(cfg.base_dir) == {"potential": str(tiny_model.resolve())}
    assert _project("gfn2", tiny_model.parent).sampling.driver_spec(".") == {"method": "gfn2"}
    assert _project("reference", tiny_model.parent).sampling.driver_spec(".") is None
    assert check_driver(str(tiny_model)) == f"bpnn model at {tiny_model}"


def test_project_file_accepts_a_pretrained_name():
    pytest.importorskip("chgnet")
    cfg = _project("chgnet", Path("."))
    assert cfg.sampling.driver_spec(".") == {"potential": "chgnet"}
    assert _project("chgnet:r2scan", Path(".")).sampling.driver == "chgnet:r2scan"


@pytest.mark.parametrize(
    ("driver", "message"),
    [
        ("no-such-model", "neither a saved mlpkit model directory .* nor a pretrained model name"),
        ("gfn", "did you mean the method 'gfn2'"),
        ("bpnn", "the bpnn family has no pretrained models"),
        ("chgnet:9.9.9", "unknown CHGNet model '9.9.9'"),
        ("empty-dir", "is not a saved mlpkit model .no model.json"),
    ],
)
def test_both_config_kinds_refuse_what_is_not_a_potential(tmp_path, driver, message):
    if driver.startswith("chgnet"):
        pytest.importorskip("chgnet")
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(InputError, match=rf"sampling\.driver: sampling driver: .*{message}"):
        _project(driver, tmp_path)
    learn = tmp_path / "learn.yaml"
    learn.write_text(yaml.safe_dump({"structure": "H2O", "reference": {"method": "gfn2"}, "driver": driver}))
    with pytest.raises(InputError, match=rf"driver: .*{message}"):
        ActiveLearningConfig.from_yaml(learn)


def test_learn_file_takes_a_potential_as_a_string_or_a_mapping(tmp_path, tiny_model):
    base = {"structure": "H2O", "reference": {"method": "gfn2"}}
    learn = tiny_model.parent / "learn.yaml"
    learn.write_text(yaml.safe_dump({**base, "driver": {"potential": tiny_model.name, "dtype": "float64"}}))
    cfg = ActiveLearningConfig.from_yaml(learn)  # the model directory is relative to the file, not the cwd
    assert cfg.driver == {"potential": str(tiny_model.resolve()), "dtype": "float64"}
    learn.write_text(yaml.safe_dump({**base, "driver": tiny_model.name}))
    assert ActiveLearningConfig.from_yaml(learn).driver == {"potential": str(tiny_model.resolve())}
    assert ActiveLearningConfig.from_dict({**base, "driver": "emt"}).driver == {"method": "emt"}
    with pytest.raises(InputError, match=r"driver: .*needs a 'method' .* or a 'potential'"):
        ActiveLearningConfig.from_dict({**base, "driver": {"model": "chgnet"}})


def test_mlpkit_check_refuses_a_bad_driver_before_anything_runs(tmp_path, capsys):
    from mlpkit.cli import main

    (tmp_path / "not-a-model").mkdir()
    learn = tmp_path / "learn.yaml"
    learn.write_text(yaml.safe_dump({"structure": "H2O", "reference": {"method": "gfn2"}, "driver": "not-a-model"}))
    with pytest.raises(SystemExit) as exc:
        main(["check", str(learn)])
    assert exc.value.code != 0
    captured = capsys.readouterr()
    # the console wraps at 80 columns, where depends on the length of the temporary path
    assert "not a saved mlpkit model (no model.json" in " ".join((captured.out + captured.err).split())


def test_a_trained_model_drives_the_initial_md_and_no_reference_is_spent_on_sampling(tmp_path, tiny_model):
    from mlpkit.files import read_images
    from mlpkit.workflows.active_learning.driver import driver_frames
    from mlpkit.workflows.active_learning.loop import run_active_learning

    log = tmp_path / "calls.log"
    raw = tiny_config(
        str(log),
        max_iterations=1,
        initial={"n": 6},
        committee={"fit": {"epochs": 15, "batch_size": 4, "learning_rate": 0.01}},
        baseline={"enabled": False},
    )
    raw["driver"] = {"potential": str(tiny_model)}  # instead of gfn2
    cfg = ActiveLearningConfig.from_dict(raw)
    run_dir = tmp_path / "run"
    summary = run_active_learning(cfg, run_dir, progress=False)

    initial = read_images(run_dir / "initial.extxyz")
    method = f"model:{tiny_model.resolve()}"
    assert {a.info["driver"] for a in initial} == {method}
    # the same MD run directly on the model's own calculator, same seed: the very same frames
    ini = cfg.initial
    direct = driver_frames(
        molecule_h2o(),
        make_driver(str(tiny_model)).calculator,
        temperature=ini.temperature,
        thermostat=ini.thermostat,
        timestep=cfg.explore.timestep,
        friction=cfg.explore.friction,
        equilibration=ini.equilibration,
        every=ini.steps_between,
        n=ini.n,
        seed=cfg.seed,
    )
    np.testing.assert_allclose([a.positions for a in initial], [a.positions for a in direct], atol=1e-6)
    # every reference calculation is a label in the store (initial + test + selected): none drove any MD
    calls = log.read_text().split()
    labelled = run_dir / "dataset.db"
    assert labelled.exists()
    n_test = cfg.test.n_per_temperature * len(cfg.test.temperatures)
    assert len(calls) == summary.n_labels + n_test
    # provenance: the run's summary says what drove the sampling
    record = json.loads((run_dir / "report" / "summary.json").read_text())["driver"]
    assert record["kind"] == "potential" and record["family"] == "bpnn" and record["driver"] == method
    assert f"Sampling driver: {method} (family bpnn" in (run_dir / "report" / "summary.md").read_text()


def molecule_h2o():
    from mlpkit.data.structures import read_structures

    return read_structures("H2O")[0]


def test_project_sampling_with_a_model_driver_records_it(tmp_path, tiny_model):
    """The project's sample stage: driver MD and normal modes around the model's own minimum, no label spent."""
    from mlpkit.workflows.engine import WorkflowState
    from mlpkit.workflows.project.context import ProjectRun
    from mlpkit.workflows.project.sample import Sample

    cfg = ProjectConfig.from_dict(
        {
            "system": {"structure": "H2O"},
            "reference": {"method": "gfn2"},
            "sampling": {"driver": "water-bpnn", "n_configs": 4, "every": 5, "n_normal_modes": 2, "n_test": 2},
            "project": {"run_dir": str(tmp_path / "run")},
        },
        base_dir=tiny_model.parent,
    )
    run = ProjectRun(cfg, WorkflowState(tmp_path / "state.json"), progress=False)
    result = Sample().run(run)
    assert result["driver"] == f"model:{tiny_model.resolve()}"
    assert result["driver_provenance"]["family"] == "bpnn"
    assert result["initial"] == 6 and result["test"] == 2
    rows = run.dataset.to_atoms(status="pending")
    assert len(rows) == 8
    assert {a.info.get("driver") for a in rows} == {result["driver"]}
    assert run.dataset.count(status="labelled") == 0  # the driver's energies are never stored as labels


@pytest.mark.slow
def test_zero_shot_chgnet_drives_project_sampling(tmp_path):
    """CHGNet (pretrained, zero-shot) as the driver of MD and of the normal modes around its own water minimum."""
    pytest.importorskip("chgnet")
    from mlpkit.workflows.engine import WorkflowState
    from mlpkit.workflows.project.context import ProjectRun
    from mlpkit.workflows.project.sample import Sample

    cfg = ProjectConfig.from_dict(
        {
            "system": {"structure": "H2O"},
            "reference": {"method": "gfn2"},
            "sampling": {"driver": "chgnet", "n_configs": 3, "every": 5, "n_normal_modes": 2, "n_test": 0},
            "project": {"run_dir": str(tmp_path / "run")},
        },
        base_dir=tmp_path,
    )
    run = ProjectRun(cfg, WorkflowState(tmp_path / "state.json"), progress=False)
    result = Sample().run(run)
    assert result["driver"] == "chgnet" and result["driver_provenance"]["base_model"] == "0.3.0"
    rows = run.dataset.to_atoms(status="pending")
    assert len(rows) == 5 and {a.info.get("driver") for a in rows} == {"chgnet"}
    # CHGNet's own water: O–H bonds within 0.1 Å of 0.97 Å in every sampled frame (a physical molecule)
    for a in rows:
        d = np.linalg.norm(a.positions[1:] - a.positions[0], axis=1)
        assert np.all(np.abs(d - 0.97) < 0.1), d


def test_mlpkit_sample_md_takes_a_potential_as_calc(tmp_path, tiny_model, capsys):
    from mlpkit.cli import main
    from mlpkit.files import read_images

    out = tmp_path / "md.extxyz"
    main(["sample", "md", "--structure", "H2O", "--calc", str(tiny_model), "--thermostat", "langevin",
          "--temperature", "300", "--steps", "20", "--every", "10", "--out", str(out)])  # fmt: skip
    frames = read_images(out)
    assert len(frames) == 2 and {a.info["driver"] for a in frames} == {f"model:{tiny_model.resolve()}"}
    with pytest.raises(SystemExit):
        main(["sample", "md", "--structure", "H2O", "--calc", str(tmp_path / "nothing"), "--out", str(out)])
    assert "neither a saved mlpkit model directory" in "".join(capsys.readouterr())


def test_a_missing_model_path_is_named_where_it_was_looked_for(tmp_path):
    with pytest.raises(InputError, match=rf"no saved model at {tmp_path}/models/final \(a path is relative"):
        _project("models/final", tmp_path)
