"""Behler-Parrinello potential: the shared potential contract, plus BPNN-specific behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bpnn_contract import SMALL_BPNN, SmallBPNNContract
from mlpkit.errors import InputError
from mlpkit.potentials.bpnn import BPNNPotential
from mlpkit.potentials.registry import create_potential
from mlpkit.testing import water_cluster


class TestBPNNContract(SmallBPNNContract):
    def make_potential(self, train):
        # a cutoff that reaches between the molecules of the test clusters, small networks for speed
        return create_potential("bpnn", train, **SMALL_BPNN)


def test_create_potential_defaults_from_data(water_frames):
    pot = create_potential("bpnn", water_frames[:5])
    assert pot.species == ("H", "O")
    # isolated molecules: cutoff just beyond the largest interatomic distance
    assert 2.0 <= pot.cutoff <= 2.5
    box = water_cluster(4, periodic=True)
    assert create_potential("bpnn", [box]).cutoff == 6.0
    with pytest.raises(InputError, match="unknown bpnn hyperparameter"):
        create_potential("bpnn", water_frames[:5], hidden_layers=3)


def test_reference_energies_fitted_on_composition(water_frames):
    from ase.calculators.singlepoint import SinglePointCalculator

    # two compositions (H2O and H2O2-like shifted data): e_ref solves the composition least squares exactly
    frames = [a.copy() for a in water_frames[:6]]
    e_h, e_o = -13.1, -2040.7
    for k, a in enumerate(frames):
        if k % 2:
            a += a[:1]  # one more O, moved away
            a.positions[-1] += [0.0, 0.0, 1.6]
        n_o = a.get_chemical_symbols().count("O")
        a.calc = SinglePointCalculator(a, energy=2 * e_h + n_o * e_o, forces=np.zeros((len(a), 3)))
    pot = BPNNPotential(["H", "O"], cutoff=3.0)
    pot._fit_normalisation(frames)
    np.testing.assert_allclose(pot.module.reference_energies.numpy(), [e_h, e_o], atol=1e-8)


def test_mc_dropout_samples_differ_and_are_seeded(water_frames):
    pot = create_potential("bpnn", water_frames[:10], hidden=(16, 16), dropout=0.2)
    pot.fit(water_frames[:10], epochs=2, progress=False)
    a = pot.predict_samples(water_frames[20:23], 3, seed=1)
    b = pot.predict_samples(water_frames[20:23], 3, seed=1)
    assert len(a) == 3
    np.testing.assert_array_equal(a[0].energy, b[0].energy)
    assert not np.allclose(a[0].energy, a[1].energy)
    # predict itself is deterministic (dropout off)
    np.testing.assert_array_equal(pot.predict(water_frames[20:23]).energy, pot.predict(water_frames[20:23]).energy)
    no_dropout = create_potential("bpnn", water_frames[:10], hidden=(8,))
    with pytest.raises(InputError, match="dropout"):
        no_dropout.predict_samples(water_frames[:2], 2)


def test_descriptors_are_standardised(water_frames):
    pot = create_potential("bpnn", water_frames[:30], hidden=(8,), feature_std_floor=0.0)
    pot.fit(water_frames[:30], epochs=1, progress=False, valid_fraction=0.0)
    feats = pot.descriptors(water_frames[:30])
    assert [f.shape for f in feats[:2]] == [(3, pot.module.descriptor.n_features)] * 2
    h = np.concatenate([f[1:] for f in feats])  # hydrogens
    varying = pot.module.feature_std[0].numpy() != 1.0  # near-constant features are left unscaled
    np.testing.assert_allclose(h.mean(0), 0, atol=1e-8)
    np.testing.assert_allclose(h.std(0)[varying], 1, rtol=1e-6)


def test_feature_scale_floor_keeps_narrow_features_moderate(water_frames):
    """With the floor, no feature's scale is below 2% of the largest feature magnitude of its element: a feature
    that barely varies in the data cannot turn a small change outside it into thousands of standard deviations."""
    free = create_potential("bpnn", water_frames[:30], hidden=(8,), feature_std_floor=0.0)
    floored = create_potential("bpnn", water_frames[:30], hidden=(8,))
    assert floored.hyperparameters["feature_std_floor"] == 0.02  # the default
    for pot in (free, floored):
        pot.fit(water_frames[:30], epochs=1, progress=False, valid_fraction=0.0)
    m = floored.module
    typical = np.sqrt(m.feature_mean.numpy() ** 2 + free.module.feature_std.numpy() ** 2).max(axis=1, keepdims=True)
    assert np.all(m.feature_std.numpy() >= 0.02 * typical - 1e-12)
    assert np.any(free.module.feature_std.numpy() < 0.02 * typical)  # the floor acts on this data
    np.testing.assert_array_equal(m.feature_mean.numpy(), free.module.feature_mean.numpy())


def test_untrained_model_predicts_large_periodic_cell_with_verlet_list():
    """Constructible without training (for timing) and consistent on a big cell across Verlet reuse."""
    box = water_cluster(80, spacing=3.1, seed=0, periodic=True)
    pot = BPNNPotential(["H", "O"], cutoff=6.0, dtype="float32")
    fresh = BPNNPotential(["H", "O"], cutoff=6.0, dtype="float32", verlet_skin=0.0)
    e1 = pot.predict([box]).energy[0]
    moved = box.copy()
    moved.positions += np.random.default_rng(0).normal(0, 0.05, moved.positions.shape)
    p = pot.predict([moved])
    assert pot.md_graph.n_builds == 1  # reused: nobody moved more than skin/2
    q = fresh.predict([moved])
    np.testing.assert_allclose(p.energy, q.energy, rtol=1e-6)
    np.testing.assert_allclose(p.forces[0], q.forces[0], atol=1e-4 * np.abs(q.forces[0]).max())
    assert np.isfinite(e1)


def test_float32_matches_float64(water_frames):
    pot64 = create_potential("bpnn", water_frames[:10], hidden=(16, 16))
    pot64.fit(water_frames[:10], epochs=2, progress=False)
    pot32 = BPNNPotential(pot64.species, **{**pot64.hyperparameters, "dtype": "float32"})
    pot32.module.load_state_dict(
        {k: v.float() if k != "reference_energies" else v for k, v in pot64.module.state_dict().items()}
    )
    a, b = pot64.predict(water_frames[50:55]), pot32.predict(water_frames[50:55])
    np.testing.assert_allclose(a.energy, b.energy, atol=1e-4)
    np.testing.assert_allclose(np.concatenate(a.forces), np.concatenate(b.forces), atol=1e-3)
    assert pot32.module.descriptor.mu.dtype == torch.float32


def test_load_as_float32(water_frames, tmp_path):
    pot = create_potential("bpnn", water_frames[:10], hidden=(16, 16))
    pot.fit(water_frames[:10], epochs=2, progress=False)
    pot.save(tmp_path / "m")
    fast = BPNNPotential.load(tmp_path / "m", dtype="float32")
    assert next(fast.module.parameters()).dtype == torch.float32
    np.testing.assert_allclose(
        fast.predict(water_frames[60:62]).energy, pot.predict(water_frames[60:62]).energy, atol=1e-4
    )
