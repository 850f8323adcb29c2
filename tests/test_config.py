"""The project configuration: every example validates, every class of bad input names its key and gives a hint,
and the commented YAML that ``mlpkit init`` writes round-trips to the same defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlpkit.config import ProjectConfig, commented_yaml, init_config
from mlpkit.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
#: every committed YAML file: examples and benchmark inputs (they must keep validating as the schema changes)
EXAMPLES = sorted(p for d in ("examples", "bench") for p in (ROOT / d).rglob("*.yaml") if p.is_file())


def _is_project_file(path: Path) -> bool:
    data = yaml.safe_load(path.read_text()) or {}
    # project files have sections; other example YAMLs (an active-learning-only file, a cluster file) are
    # validated by their own schemas
    return isinstance(data, dict) and "structure" not in data and bool({"project", "system", "reference"} & set(data))


def test_there_are_example_configs():
    assert any(_is_project_file(p) for p in EXAMPLES), "examples/**/*.yaml should hold at least one project file"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_validates(path):
    if _is_project_file(path):
        cfg = ProjectConfig.from_yaml(path)
        assert cfg.run_dir.is_relative_to(path.parent)
        cfg.structure_atoms()  # the structure is readable
    elif "structure" in (yaml.safe_load(path.read_text()) or {}):
        from mlpkit.config.active_learning import ActiveLearningConfig

        ActiveLearningConfig.from_yaml(path)
    else:
        pytest.skip(f"{path.name} is neither a project nor an active-learning file")


def _problems(tmp_path, text: str) -> str:
    f = tmp_path / "mlpkit.yaml"
    f.write_text(text)
    with pytest.raises(InputError) as info:
        ProjectConfig.from_yaml(f)
    return str(info.value)


def test_unknown_key_is_reported_with_its_path_and_a_suggestion(tmp_path):
    msg = _problems(tmp_path, "production:\n  temprature: 300\n")
    assert "production.temprature: unknown key" in msg
    assert "did you mean temperature" in msg


def test_unknown_section(tmp_path):
    msg = _problems(tmp_path, "sampeling:\n  n_configs: 3\n")
    assert "sampeling: unknown key" in msg and "did you mean sampling" in msg


def test_wrong_type(tmp_path):
    msg = _problems(tmp_path, "model:\n  fit:\n    epochs: many\n")
    assert "model.fit.epochs" in msg and "valid integer" in msg and "'many'" in msg
    assert "[epochs: maximum training epochs]" in msg  # the family's own description of the setting


def test_negative_temperature(tmp_path):
    msg = _problems(tmp_path, "production:\n  temperature: -5\n")
    assert "production.temperature: Input should be greater than 0 (got -5)" in msg
    assert "hint: K" in msg


def test_cutoff_not_positive(tmp_path):
    msg = _problems(tmp_path, "model:\n  hyperparameters: {cutoff: 0}\n")
    assert "model.hyperparameters.cutoff: Input should be greater than 0" in msg


def test_unknown_hyperparameter(tmp_path):
    msg = _problems(tmp_path, "model:\n  hyperparameters: {cutof: 5}\n")
    assert "model.hyperparameters.cutof" in msg and "did you mean cutoff" in msg


def test_method_not_installed(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gpaw" else real(name, *a))
    msg = _problems(tmp_path, "reference:\n  method: gpaw\n")
    assert "reference.method" in msg and "not installed" in msg and "reference-methods.md" in msg


def test_unknown_method_and_bad_method_option(tmp_path):
    msg = _problems(tmp_path, "reference:\n  method: pyscff\n")
    assert "reference.method: unknown reference method 'pyscff'" in msg and "did you mean pyscf" in msg
    msg = _problems(tmp_path, "reference:\n  method: pyscf\n  options: {xcc: PBE}\n")
    assert "reference.options" in msg and "xcc" in msg


def test_structure_problems(tmp_path):
    msg = _problems(tmp_path, "system:\n  structure: H2X\n")
    assert "system.structure" in msg and "did you mean" in msg
    msg = _problems(tmp_path, "system:\n  structure: missing.xyz\n")
    assert "system.structure: file" in msg and "does not exist" in msg


def test_cross_field_checks(tmp_path):
    msg = _problems(tmp_path, "production:\n  watchdog: {warn: 1.0, stop: 0.5}\n")
    assert "production.watchdog.warn" in msg
    msg = _problems(tmp_path, "production:\n  watchdog: {density: [1.2, 0.8]}\n")
    assert "production.watchdog.density" in msg and "0 < low < high" in msg
    msg = _problems(tmp_path, "sampling:\n  n_configs: 50\nactive_learning:\n  label_budget: 20\n")
    assert "active_learning.label_budget" in msg
    msg = _problems(tmp_path, "active_learning:\n  explore: {temperatures: [-10]}\n")
    assert "active_learning.explore.temperatures" in msg


def test_all_problems_reported_at_once(tmp_path):
    msg = _problems(tmp_path, "project:\n  sed: 1\nproduction:\n  temperature: -1\n  steps: 0\n")
    assert msg.splitlines()[0].endswith("has 3 problems:")


def test_bad_yaml_and_not_a_mapping(tmp_path):
    assert "not valid YAML" in _problems(tmp_path, "project: [unclosed\n")
    assert "must be a mapping" in _problems(tmp_path, "- a\n- b\n")


def test_commented_yaml_round_trips_and_documents_every_key():
    text = commented_yaml(ProjectConfig())
    data = yaml.safe_load(text)
    assert ProjectConfig.from_dict(data).to_dict() == ProjectConfig().to_dict()
    # every field with a description has its comment right above it
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip().startswith("temperature: 300.0"))
    assert lines[i - 1].strip().startswith("#") and "K" in lines[i - 1]


def test_a_mixed_committee_round_trips_through_the_commented_yaml(tmp_path):
    """`mlpkit run` writes the configuration as run first: a committee of several families (pydantic members in a
    list) must be written as plain YAML and read back the same (it raised a RepresenterError)."""
    members = [{"family": "bpnn", "fit": {"epochs": 60}}, {"family": "mtp"}, {"family": "gap"}]
    cfg = ProjectConfig.from_dict({"model": {"committee": {"n_members": 3, "members": members}}})
    path = tmp_path / "as-run.yaml"
    cfg.write_yaml(path)
    again = ProjectConfig.from_yaml(path)
    assert [m.family for m in again.model.committee.members] == ["bpnn", "mtp", "gap"]
    assert again.model.committee.members[0].fit == {"epochs": 60}
    assert again.to_dict()["model"] == cfg.to_dict()["model"]


def test_init_writes_every_default(tmp_path):
    path = init_config(tmp_path / "water", structure="H2O", method="pyscf")
    text = path.read_text()
    for key in ("xc: PBE", "basis: def2-SVP", "conv_tol:", "n_configs:", "watchdog:", "label_budget:", "ensemble:"):
        assert key in text
    cfg = ProjectConfig.from_yaml(path)
    assert cfg.reference.labeler().method == "pyscf:PBE/def2-SVP"
    assert cfg.run_dir == (tmp_path / "water" / "run").resolve()
    with pytest.raises(InputError, match="exists"):
        init_config(tmp_path / "water")


def test_init_cli(tmp_path):
    from typer.testing import CliRunner

    from mlpkit.cli import _register, app

    _register()
    res = CliRunner().invoke(app, ["init", str(tmp_path / "p"), "--structure", "H2O", "--method", "gfn2"])
    assert res.exit_code == 0, res.output
    cfg = ProjectConfig.from_yaml(tmp_path / "p" / "mlpkit.yaml")
    assert cfg.reference.method == "gfn2"


def test_settings_added_later_leave_finished_stages_valid_at_their_defaults():
    """Upgrading mlpkit must not rerun a finished project: a new setting left at its default is not part of the
    stage fingerprints, and set to something else it invalidates exactly the stages that depend on it."""
    from mlpkit.workflows.project.runner import LATER_DEFAULTS, stage_fingerprints

    path = ROOT / "examples" / "tiny" / "mlpkit.yaml"
    base = stage_fingerprints(ProjectConfig.from_yaml(path))

    def with_setting(dotted: str, value) -> dict:
        data = yaml.safe_load(path.read_text())
        node = data
        *parents, key = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = value
        return stage_fingerprints(ProjectConfig.from_dict(data, base_dir=path.parent))

    # model.committee.warm_start: its default changed from True to False (measured steadier); an old run that left it
    # unset trained with warm starts, so its train stage and later ones rerun, and only those
    changed_default = {"model.committee.warm_start", "model.fit.keep"}
    for dotted, default in LATER_DEFAULTS.items():
        if dotted not in changed_default:
            assert with_setting(dotted, default) == base, dotted
    warm = with_setting("model.committee.warm_start", True)
    assert warm["label"] == base["label"] and warm["train"] != base["train"]
    changed = with_setting("model.fit.keep", "best")
    assert changed["sample"] == base["sample"] and changed["label"] == base["label"]
    assert changed["train"] != base["train"]
    changed = with_setting("active_learning.explore.bias", 0.1)
    assert changed["validate"] == base["validate"] and changed["learn"] != base["learn"]


def test_project_and_learn_files_share_their_section_classes_and_thermostat_names():
    """One definition of each shared section: the learn file's explore/trust/select/stop/baseline settings are the
    project file's active_learning sub-sections, and both files accept the same thermostat names."""
    from mlpkit.config.active_learning import ActiveLearningConfig, ActiveLearningSection
    from mlpkit.config.sampling import md_ensemble, sampling_thermostat

    for key in ("explore", "trust", "select", "stop", "baseline"):
        assert ActiveLearningSection.model_fields[key].annotation is ActiveLearningConfig.model_fields[key].annotation
    sampling = ProjectConfig.model_fields["sampling"].annotation
    initial = ActiveLearningConfig.model_fields["initial"].annotation
    assert sampling.model_fields["thermostat"].annotation == initial.model_fields["thermostat"].annotation
    for name in ("nvt", "langevin", "nve"):
        assert ProjectConfig.from_dict({"sampling": {"thermostat": name}}).sampling.thermostat == name
        assert ActiveLearningConfig.from_dict({"structure": "H2O", "initial": {"thermostat": name}})
    assert [md_ensemble(t) for t in ("nvt", "langevin", "nve")] == ["nvt", "nvt", "nve"]
    assert [sampling_thermostat(t) for t in ("nvt", "langevin", "nve")] == ["langevin", "langevin", "nve"]
