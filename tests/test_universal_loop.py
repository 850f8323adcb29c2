"""A universal model as the project's model: `model: {family: chgnet, fit: {...}}` makes `mlpkit run` start from the
pretrained CHGNet and fine-tune a committee of it on the labels, and `mlpkit learn` fine-tune inside the loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

pytest.importorskip("chgnet")

import mlpkit
from mlpkit.cli import main
from mlpkit.potentials.universal import CHGNetPotential
from mlpkit.uncertainty.committee import Committee
from mlpkit.workflows.project.runner import run_project

#: one epoch: enough to move every trained weight away from the pretrained values
ONE_EPOCH = {"epochs": 1, "batch_size": 4}


def _largest_change(model: CHGNetPotential, pretrained: CHGNetPotential) -> float:
    """Largest absolute change of any weight from the pretrained model."""
    start = pretrained.module.state_dict()
    return max(float((v - start[k]).abs().max()) for k, v in model.module.state_dict().items())


@pytest.fixture(scope="module")
def pretrained() -> CHGNetPotential:
    return mlpkit.load("chgnet")


def test_project_run_fine_tunes_a_committee_of_chgnet(tmp_path, pretrained):
    cfg = {
        "project": {"name": "water-chgnet", "run_dir": "run", "seed": 0},
        "system": {"structure": "H2O"},
        "reference": {"method": "gfn2"},
        "sampling": {
            "driver": "gfn2",
            "n_configs": 8,
            "n_normal_modes": 0,
            "every": 5,
            "n_test": 2,
            "test_temperatures": [500.0],
        },
        "execution": {"workers": 0},
        "model": {"family": "chgnet", "committee": {"n_members": 2}, "fit": {**ONE_EPOCH, "layers": "last"}},
    }
    path = tmp_path / "mlpkit.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # what `mlpkit run mlpkit.yaml --stage sample --stage label --stage train` runs
    run_project(path, stages=("sample", "label", "train"), progress=False)
    model = mlpkit.load(tmp_path / "run" / "models" / "initial")
    assert isinstance(model, Committee) and len(model.members) == 2
    for member in model.members:
        assert isinstance(member, CHGNetPotential)
        # aligned on the GFN2 labels (H and O offsets), then fine-tuned with the config's settings
        assert set(member.offsets) == {"H", "O"}
        assert member.fine_tune["epochs"] == 1 and member.fine_tune["layers"] == "last"
        assert member.metadata["method"] == "tblite:GFN2-xTB"
        assert _largest_change(member, pretrained) > 1e-4
        # 'last' trains the last interaction block and the readout; the embedding keeps its pretrained weights
        start = pretrained.module.state_dict()
        for name, value in member.module.state_dict().items():
            if name.startswith("atom_embedding."):
                assert np.array_equal(value.numpy(), start[name].numpy()), name
    # the members differ (seeds: batch order), so the committee has a spread to drive active learning
    a, b = (m.module.state_dict() for m in model.members)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) > 1e-6


def test_active_learning_fine_tunes_chgnet_inside_the_loop(tmp_path, pretrained):
    from al_helpers import tiny_config

    cfg = tiny_config(
        str(tmp_path / "labels.log"),
        max_iterations=1,
        label_budget=12,
        initial={"n": 6},
        explore={"walkers": 1, "steps": 30, "interval": 5},
        test={"n_per_temperature": 3},
    )
    cfg["committee"] = {"family": "chgnet", "n_members": 2, "fit": ONE_EPOCH}
    cfg["baseline"] = {"enabled": False}
    path = tmp_path / "learn.yaml"
    path.write_text(yaml.safe_dump(cfg))
    main(["learn", str(path), "--run-dir", str(tmp_path / "run"), "-q"])
    run = tmp_path / "run"
    first = mlpkit.load(run / "iter-000" / "model")
    last = mlpkit.load(run / "iter-001" / "model")
    explored = json.loads((run / "iter-000" / "explore.json").read_text())
    assert explored  # the committee of fine-tunes explored on its own spread
    n_train = []
    for model in (first, last):
        assert isinstance(model, Committee) and len(model.members) == 2
        for member in model.members:
            assert isinstance(member, CHGNetPotential) and member.fine_tune["epochs"] == 1
            assert _largest_change(member, pretrained) > 1e-4
        n_train.append(model.members[0].metadata["n_train"])
    # the second round was fine-tuned again, on the labels the first round's uncertainty asked for
    assert n_train[1] > n_train[0], n_train


def test_the_documented_model_section_is_valid():
    """The user guide's `model: {family: chgnet, ...}` example passes the project file's checks as written."""
    from pathlib import Path

    from mlpkit.config.model import ModelSection

    guide = (Path(__file__).resolve().parents[1] / "docs" / "user-guide.md").read_text()
    block = guide.split("**Starting from a universal model.**", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    section = ModelSection(**yaml.safe_load(block)["model"])
    assert section.family == "chgnet" and section.committee.n_members == 4
    assert section.fit["epochs"] == 100 and section.fit["layers"] == "all"
