"""The family API: registry look-ups, entry points, the prediction record, calibration of any uncertainty kind."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mlpkit.errors import InputError
from mlpkit.potentials import Prediction, family_class, known_families, load_potential, registry
from mlpkit.testing import labelled_water


def test_unknown_family_says_what_exists():
    with pytest.raises(InputError, match=r"unknown model family 'bpn' \(did you mean bpnn\?\)"):
        family_class("bpn")
    assert {"bpnn", "committee", "mc_dropout"} <= set(known_families())


def test_every_builtin_declares_itself():
    for name in known_families():
        cls = family_class(name)
        assert cls.family == name
        assert cls.capabilities.uncertainty in ("none", "committee", "dropout", "variance", "grade")
        for model in (cls.Hyperparameters, cls.FitSettings):
            for key, info in model.model_fields.items():
                assert info.description, f"{name}: {model.__name__}.{key} has no description"


def test_third_party_family_through_entry_point(monkeypatch):
    from toy_family import ToyPotential

    point = SimpleNamespace(name="toy", load=lambda: ToyPotential)
    monkeypatch.setattr(registry, "_entry_points", lambda: {"toy": point})
    assert "toy" in known_families()
    assert family_class("toy") is ToyPotential
    pot = registry.create_potential("toy", labelled_water(5))
    assert pot.species == ("H", "O")


def test_entry_point_must_name_its_own_family(monkeypatch):
    from toy_family import ToyPotential

    monkeypatch.setattr(registry, "_entry_points", lambda: {"other": SimpleNamespace(load=lambda: ToyPotential)})
    with pytest.raises(InputError, match="declares family 'toy'"):
        family_class("other")


def test_pretrained_names_and_missing_models(tmp_path):
    with pytest.raises(InputError, match="no pretrained models"):
        load_potential("bpnn")
    with pytest.raises(InputError, match="not a saved mlpkit model"):
        load_potential(tmp_path)


def test_score_prefers_a_grade_and_concatenate_keeps_every_field():
    spread = Prediction(np.zeros(1), [np.zeros((2, 3))], forces_std=[np.array([[0.3, 0.4, 0.0], [0.0, 0.1, 0.0]])])
    np.testing.assert_allclose(spread.score(), [0.5])
    graded = Prediction(np.zeros(2), [np.zeros((1, 3))] * 2, uncertainty=np.array([1.5, 7.0]),
                        atom_uncertainty=[np.array([1.5]), np.array([7.0])])  # fmt: skip
    np.testing.assert_allclose(graded.score(), [1.5, 7.0])
    both = Prediction.concatenate([graded, graded])
    assert len(both) == 4 and len(both.atom_uncertainty) == 4 and both.forces_std is None
    np.testing.assert_allclose(both.score(), [1.5, 7.0, 1.5, 7.0])
    assert Prediction(np.zeros(1), [np.zeros((1, 3))]).score() is None


def test_calibration_of_a_grade():
    from mlpkit.uncertainty.calibration import calibrate_prediction

    images = labelled_water(12)
    rng = np.random.default_rng(0)
    errors = rng.uniform(0.01, 0.5, len(images))
    forces, grades = [], []
    for atoms, e in zip(images, errors, strict=True):
        ref = atoms.calc.results["forces"]
        forces.append(ref + np.array([e, 0.0, 0.0]))  # every atom off by e eV/Å
        grades.append(np.full(len(atoms), 4.0 * e))  # γ proportional to the error
    pred = Prediction(np.zeros(len(images)), forces, uncertainty=4.0 * errors, atom_uncertainty=grades)
    cal = calibrate_prediction(images, pred)
    assert cal.spearman_config == pytest.approx(1.0)
    assert cal.scale == pytest.approx(0.25)
    assert np.isnan(cal.scale_gaussian)
