"""Linear moment-tensor potential (MTP family): the shared contract, plus its fit, design matrix and grade."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlpkit.errors import InputError
from mlpkit.potentials.mtp import ActiveSet, MomentTensorBasis, MTPPotential, maxvol
from mlpkit.potentials.registry import create_potential
from mlpkit.testing import PotentialContract, labelled_water, water_cluster


class TestMTPContract(PotentialContract):
    fit_settings: dict = {}
    tiny_fit_settings: dict = {}
    tiny_energy_mae = 5e-4  # eV/atom
    tiny_forces_mae = 0.03  # eV/Å

    def make_potential(self, train):
        # a cutoff that reaches between the molecules of the test clusters; level 12 keeps the checks fast
        return create_potential("mtp", train, cutoff=3.5, level=12)


@pytest.fixture(scope="module")
def frames():
    return labelled_water(60)


@pytest.fixture(scope="module")
def fitted(frames):
    pot = create_potential("mtp", frames[:40], level=12)
    pot.fit(frames[:40])
    return pot


def test_basis_is_rotation_invariant_and_sized_by_level():
    sizes = [MomentTensorBasis(2, level, 4, 3.0, 0.5).n_basis for level in (8, 12, 16)]
    assert sizes == sorted(sizes) and sizes[0] > 0
    # MLIP's untrained single-element MTPs of levels 6 and 8 have 5 and 9 scalar moments (basis functions)
    assert [MomentTensorBasis(1, level, 4, 3.0, 0.5).n_basis for level in (6, 8)] == [5, 9]
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    vec = torch.as_tensor(rng.normal(0, 1.2, (12, 3)))
    centers = torch.as_tensor(np.repeat(np.arange(3), 4))
    nsp = torch.as_tensor(rng.integers(0, 2, 12))
    b = MomentTensorBasis(2, 16, 4, 3.0, 0.5)
    rot = torch.as_tensor(Rotation.random(random_state=3).as_matrix())
    values = [b.basis_values(b.moments(b.pair_features(v), centers, nsp, 3)) for v in (vec, vec @ rot.T)]
    torch.testing.assert_close(values[0], values[1], rtol=1e-10, atol=1e-12)


def test_pair_jacobian_equals_autograd():
    rng = np.random.default_rng(1)
    b = MomentTensorBasis(2, 14, 4, 3.0, 0.5)
    vec = torch.as_tensor(rng.normal(0, 1.0, (10, 3)), dtype=torch.float64).requires_grad_(True)
    centers = torch.as_tensor(np.repeat(np.arange(2), 5))
    nsp = torch.as_tensor(rng.integers(0, 2, 10))
    moments = b.moments(b.pair_features(vec), centers, nsp, 2)
    values = b.basis_values(moments)
    jac = b.pair_jacobian(moments.detach(), vec.detach(), centers, nsp)
    for alpha in (0, b.n_basis // 2, b.n_basis - 1):
        (grad,) = torch.autograd.grad(values[:, alpha].sum(), vec, retain_graph=True)
        torch.testing.assert_close(jac[:, :, alpha], grad, rtol=1e-10, atol=1e-12)


def test_compiled_pair_loops_match_torch(fitted, frames):
    box = water_cluster(8, spacing=2.9, seed=3, periodic=True)
    images = [box, *frames[40:43]]
    a = fitted.predict(images, stress=True)
    fitted.compiled = False
    try:
        b = fitted.predict(images, stress=True)
    finally:
        fitted.compiled = True
    np.testing.assert_allclose(a.energy, b.energy, rtol=1e-12)
    np.testing.assert_allclose(np.concatenate(a.forces), np.concatenate(b.forces), atol=1e-10)
    np.testing.assert_allclose(a.stress[0], b.stress[0], atol=1e-12)


def test_design_rows_reproduce_prediction():
    """Energy, force and stress rows of the fit times any coefficients = the potential's own prediction."""
    from mlpkit.potentials.mtp.fit import design_block

    images = [water_cluster(4, spacing=3.1, seed=s, periodic=True) for s in range(2)] + [water_cluster(3, seed=5)]
    pot = MTPPotential(["H", "O"], cutoff=3.0, level=10)
    pot.coefficients = np.random.default_rng(0).normal(size=pot.coefficients.shape)
    e_rows, f_rows, s_rows, _, _ = design_block(pot, images, stress=True)
    c = pot.coefficients.reshape(-1)
    pred = pot.predict(images, stress=True)
    np.testing.assert_allclose(e_rows @ c, pred.energy, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(f_rows @ c, np.concatenate(pred.forces), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose((s_rows.numpy() @ c)[:2], pred.stress[:2], rtol=1e-9, atol=1e-11)


def test_fit_is_fast_and_accurate_on_water(frames, fitted):
    from mlpkit.validation.metrics import evaluate

    metrics, _ = evaluate(fitted, frames[40:])
    assert metrics["forces_mae"] < 0.05, metrics  # GFN2 water at 500 K, 40 frames
    assert fitted.metadata["fit_seconds"] < 30
    assert fitted.metadata["n_train"] == 40 and fitted.metadata["training_set_hash"]


def test_configuration_weights_silence_a_corrupted_frame(frames):
    from ase.calculators.singlepoint import SinglePointCalculator

    train = [a.copy() for a in frames[:20]]
    for a, b in zip(train, frames[:20], strict=True):
        a.calc = SinglePointCalculator(a, **b.calc.results)
    clean = create_potential("mtp", train, level=10)
    clean.fit(train)
    bad = train[3]
    bad.calc = SinglePointCalculator(bad, energy=bad.get_potential_energy() + 5.0, forces=bad.get_forces() + 3.0)
    bad.info["weight"] = 0.0
    weighted = create_potential("mtp", train, level=10)
    weighted.fit(train[:3] + train[4:])  # the same fit without the frame
    zeroed = create_potential("mtp", train, level=10)
    zeroed.fit(train)
    test = frames[30:35]
    # the baseline sees every frame's energy; the coefficients must not see the corrupted labels
    np.testing.assert_allclose(
        np.concatenate(zeroed.predict(test).forces), np.concatenate(weighted.predict(test).forces), atol=2e-3
    )
    bad.info["weight"] = 1.0
    spoiled = create_potential("mtp", train, level=10)
    spoiled.fit(train)
    diff = np.abs(np.concatenate(spoiled.predict(test).forces) - np.concatenate(weighted.predict(test).forces))
    assert diff.max() > 0.05


def test_maxvol_coefficients_bounded():
    x = np.random.default_rng(0).normal(size=(300, 12))
    rows = maxvol(x)
    coeff = x @ np.linalg.inv(x[rows])
    assert len(set(rows.tolist())) == 12
    assert np.abs(coeff).max() <= 1 + 1e-3 + 1e-9
    np.testing.assert_allclose(coeff[rows], np.eye(12), atol=1e-9)
    with pytest.raises(ValueError):
        maxvol(x[:5])


def test_grade_below_one_on_training_above_far_away(frames, fitted):
    train_pred = fitted.predict(frames[:40])
    gamma = np.concatenate(train_pred.atom_uncertainty)
    assert gamma.max() <= 1 + 1e-3 + 1e-8
    np.testing.assert_allclose(train_pred.uncertainty, [g.max() for g in train_pred.atom_uncertainty])
    stretched = frames[0].copy()
    stretched.positions[1] += 0.6 * (stretched.positions[1] - stretched.positions[0])  # an O-H bond 60% longer
    squeezed = frames[0].copy()
    squeezed.positions[2] = 0.5 * (squeezed.positions[2] + squeezed.positions[0])
    far = fitted.predict([stretched, squeezed])
    assert far.uncertainty.min() > 2.0, far.uncertainty
    assert fitted.predict(frames[40:]).uncertainty.max() < far.uncertainty.min()
    atoms = stretched.copy()
    atoms.calc = fitted.calculator()
    assert atoms.calc.get_property("uncertainty", atoms) == pytest.approx(far.uncertainty[0])
    assert atoms.calc.results["atom_uncertainty"].shape == (3,)


def test_active_set_of_rank_deficient_rows_bounds_training_rows():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(15, 4)) @ rng.normal(size=(4, 30))  # 15 environments, rank 4, 30 functions
    active = ActiveSet.select(x)
    assert active.projection.shape == (30, 4)
    assert active.grade(x).max() <= 1 + 1e-3 + 1e-8
    outside = x[:1] + 0.5 * rng.normal(size=(1, 30)) * np.abs(x).mean()
    assert active.grade(outside)[0] > 1.0


def test_save_load_keeps_grade(fitted, frames, tmp_path):
    import mlpkit

    fitted.save(tmp_path / "m")
    loaded = mlpkit.load(tmp_path / "m")
    a, b = fitted.predict(frames[50:55]), loaded.predict(frames[50:55])
    np.testing.assert_array_equal(a.uncertainty, b.uncertainty)
    assert loaded.uncertainty_kind == "grade" and loaded.capabilities.fit == "closed_form"


def test_settings_errors(frames):
    with pytest.raises(InputError, match="unknown mtp hyperparameter"):
        create_potential("mtp", frames[:3], levels=12)
    with pytest.raises(InputError, match="level"):
        create_potential("mtp", frames[:3], level=40)
    with pytest.raises(InputError, match="r_min"):
        MTPPotential(["H", "O"], cutoff=3.0, r_min=3.5)
    pot = create_potential("mtp", frames[:3], level=8)
    with pytest.raises(InputError, match="unknown mtp fit setting 'epochs'"):
        pot.fit(frames[:3], epochs=10)
    with pytest.raises(InputError, match="ridge"):
        pot.fit(frames[:3], ridge=-1.0)
    untrained = MTPPotential(["H", "O"], cutoff=3.0, level=8)
    assert untrained.predict(frames[:2]).uncertainty is None  # no active set: no grade


def test_data_derived_defaults(frames):
    pot = create_potential("mtp", frames[:5])
    assert pot.species == ("H", "O")
    assert 2.0 <= pot.cutoff <= 2.5  # isolated molecules: the largest distance + 0.5 Å
    assert 0.5 < pot.hyperparameters["r_min"] < 1.0  # 0.8 x the shortest O-H distance
    assert create_potential("mtp", [water_cluster(4, periodic=True)], level=8).cutoff == 5.0


def test_md_watchdog_acts_on_the_grade(fitted, frames):
    """The MD watchdog reads γ through the calculator: a 3000 K start leaves the training distribution at once and
    is stopped at γ >= 10; a few cold steps from a training frame stay inside it (γ ≤ 1 there)."""
    from mlpkit.md.dynamics import UncertaintyWatchdog, run_md

    hot = UncertaintyWatchdog(warn=2.0, stop=10.0)
    result = run_md(frames[0], fitted.calculator(), temperature=3000.0, steps=300, seed=1, watchdog=hot)
    assert "uncertainty" in result.stopped_because and result.steps_done < 300
    assert hot.max_seen >= 10.0
    calm = UncertaintyWatchdog(warn=2.0, stop=10.0)
    quiet = run_md(frames[0], fitted.calculator(), temperature=1.0, steps=5, seed=1, watchdog=calm, max_temperature=1e4)
    assert not quiet.stopped_because and quiet.steps_done == 5
    assert calm.max_seen < 1.5, calm.max_seen
