"""A configuration file says what it is for: each command given the other kind names the command that takes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpkit.config import ProjectConfig
from mlpkit.config.active_learning import ActiveLearningConfig
from mlpkit.config.base import file_kind
from mlpkit.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
LEARN = ROOT / "examples" / "learn-water.yaml"
PROJECT = ROOT / "examples" / "tiny" / "mlpkit.yaml"


def test_every_committed_file_is_recognised():
    import yaml

    for path in [*ROOT.glob("examples/*.yaml"), *ROOT.glob("examples/*/mlpkit.yaml")]:
        kind = file_kind(yaml.safe_load(path.read_text()))
        assert kind == ("project" if path.name == "mlpkit.yaml" else "learn"), path


def test_project_loader_names_mlpkit_learn():
    with pytest.raises(InputError, match=r"active-learning file .* run it with `mlpkit learn"):
        ProjectConfig.from_yaml(LEARN)


def test_learn_loader_names_mlpkit_run():
    with pytest.raises(InputError, match=r"is a project file .* run it with `mlpkit run"):
        ActiveLearningConfig.from_yaml(PROJECT)


def test_check_reads_both_kinds(capsys):
    from mlpkit.cli import main

    main(["check", str(LEARN)])
    main(["check", str(PROJECT)])
    out = capsys.readouterr().out
    assert "run it with: mlpkit learn" in out and "run it with: mlpkit run" in out
