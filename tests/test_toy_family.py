"""A family added from outside the package (tests/toy_family.py + one registration) works everywhere a family must:
the shared contract, `mlpkit train --family toy`, committees, and active learning on its own uncertainty."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.potentials import create_potential, load_potential, register_family, unregister_family
from mlpkit.testing import PotentialContract, labelled_water
from toy_family import ToyPotential


@pytest.fixture(autouse=True, scope="module")
def _registered():
    register_family(ToyPotential)
    yield
    unregister_family("toy")


class TestToyContract(PotentialContract):
    fit_settings = {}
    tiny_fit_settings = {"energy_sigma": 1e-4, "force_sigma": 0.01}
    tiny_energy_mae = 5e-3  # a pair potential cannot bend water exactly
    tiny_forces_mae = 0.3

    def make_potential(self, train):
        return create_potential("toy", train, cutoff=3.5)


def test_variance_grows_away_from_the_data():
    train = labelled_water(30)
    pot = create_potential("toy", train)
    pot.fit(train)
    near = pot.predict(train[:5]).score()
    squeezed = train[0].copy()
    squeezed.positions[1] = squeezed.positions[0] + 0.6 * (squeezed.positions[1] - squeezed.positions[0])
    far = pot.predict([squeezed]).score()
    assert far[0] > 5 * near.max()


def test_train_command_and_reload(tmp_path):
    from ase.io import write

    from mlpkit.cli import main

    write(tmp_path / "train.extxyz", labelled_water(20))
    main(["train", "--data", str(tmp_path / "train.extxyz"), "--family", "toy", "--set", "n_basis=6",
          "--fit", "force_sigma=0.02", "--out", str(tmp_path / "toy"), "--no-progress"])  # fmt: skip
    pot = load_potential(tmp_path / "toy")
    assert isinstance(pot, ToyPotential) and pot.hp.n_basis == 6
    with pytest.raises(SystemExit):
        main(["train", "--data", str(tmp_path / "train.extxyz"), "--family", "toy", "--fit", "epochs=3",
              "--out", str(tmp_path / "bad")])  # fmt: skip


def test_mixed_committee_with_bpnn():
    from mlpkit.uncertainty import ModelSpec, fit_model

    train = labelled_water(20)
    spec = ModelSpec(
        family="bpnn",
        committee={
            "n_members": 2,
            "members": [
                {"family": "toy"},
                {"family": "bpnn", "hyperparameters": {"hidden": [8]}, "fit": {"epochs": 5}},
            ],
        },
    )
    model = fit_model(spec, train)
    assert [m.family for m in model.members] == ["toy", "bpnn"]
    pred = model.predict(train[:3])
    assert np.all(pred.score() > 0)


def test_active_learning_on_the_toy_uncertainty_alone(tmp_path):
    """A tiny `mlpkit learn` run whose only uncertainty is the toy family's own variance: no committee."""
    import json

    import yaml

    from al_helpers import tiny_config
    from mlpkit.cli import main

    cfg = tiny_config(str(tmp_path / "labels.log"))
    cfg["committee"] = {"family": "toy", "n_members": 1, "fit": {"force_sigma": 0.05}}
    cfg["baseline"] = {"enabled": False}
    path = tmp_path / "learn.yaml"
    path.write_text(yaml.safe_dump(cfg))
    main(["learn", str(path), "--run-dir", str(tmp_path / "run")])
    summary = json.loads((tmp_path / "run" / "report" / "summary.json").read_text())
    assert summary["iterations"], summary
    model = load_potential(tmp_path / "run" / "iter-000" / "model")
    assert isinstance(model, ToyPotential)  # the loop trained the family itself, not a committee of it
    explored = json.loads((tmp_path / "run" / "iter-000" / "explore.json").read_text())
    assert explored  # exploration ran on the toy's own uncertainty


def test_a_model_without_uncertainty_cannot_drive_active_learning(tmp_path):
    from al_helpers import tiny_config
    from mlpkit.config.active_learning import ActiveLearningConfig
    from mlpkit.errors import InputError

    cfg = tiny_config(str(tmp_path / "labels.log"))
    cfg["committee"] = {"family": "bpnn", "n_members": 1}
    with pytest.raises(InputError, match="no uncertainty to drive active learning"):
        ActiveLearningConfig.from_dict(cfg)
