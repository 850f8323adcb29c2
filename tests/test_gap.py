"""GAP (sparse GP on SOAP): the shared potential contract, plus the GP's own behaviour (variance, settings, files)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("featomic")

from mlpkit.errors import InputError
from mlpkit.potentials.gap import GAPPotential
from mlpkit.potentials.registry import create_potential
from mlpkit.testing import PotentialContract, labelled_water, water_cluster

#: small basis and sparse set: the checks are about the maths, not the accuracy
SMALL = {"cutoff": 3.5, "max_radial": 4, "max_angular": 3, "n_sparse": 40}


class TestGAPContract(PotentialContract):
    fit_settings: dict = {}
    tiny_fit_settings: dict = {}
    tiny_energy_mae = 1e-4  # eV/atom
    tiny_forces_mae = 0.005  # eV/Å (force_sigma 1 meV/Å: the GP smooths, it does not interpolate)

    def make_potential(self, train):
        return create_potential("gap", train, **SMALL)

    def test_forces_fd_on_the_mean_only_path(self, potential, frames):
        """With ``variance`` off, forces come from a different contraction (weights first): check it too."""
        potential.variance = False
        try:
            self._check_forces_fd(potential, frames[30])
            self._check_forces_fd(potential, water_cluster(4, spacing=3.1, seed=2, periodic=True))
        finally:
            potential.variance = True


class TestGAPTwoBodyContract(PotentialContract):
    """The same checks with the optional two-body term on (its own rows, stress, cutoff and files)."""

    fit_settings: dict = {}
    tiny_fit_settings: dict = {}
    tiny_energy_mae = 1e-4
    tiny_forces_mae = 0.005

    def make_potential(self, train):
        return create_potential("gap", train, **SMALL, two_body=True, two_body_points=8)

    def test_forces_fd_on_the_mean_only_path(self, potential, frames):
        assert potential.two_body is not None and sum(len(w) for w in potential.weights2) > 0
        potential.variance = False
        try:
            self._check_forces_fd(potential, water_cluster(4, spacing=3.1, seed=2, periodic=True))
            box = water_cluster(4, spacing=3.1, seed=2, periodic=True)
            on = potential.predict([box], stress=True)
        finally:
            potential.variance = True
        with_var = potential.predict([box], stress=True)
        np.testing.assert_allclose(on.stress, with_var.stress, rtol=0, atol=1e-10)


@pytest.fixture(scope="module")
def frames():
    return labelled_water(60)


@pytest.fixture(scope="module")
def fitted(frames):
    pot = create_potential("gap", frames[:30], **SMALL)
    pot.fit(frames[:30])
    return pot


def test_defaults_from_data(frames):
    pot = create_potential("gap", frames[:5])
    assert pot.species == ("H", "O")
    assert pot.cutoff == 3.5  # an isolated water: the SOAP minimum, not the molecule's size
    assert create_potential("gap", [water_cluster(4, periodic=True)]).cutoff == 5.0
    assert pot.capabilities.uncertainty == "variance" and pot.capabilities.fit == "closed_form"


def test_settings_errors(frames):
    with pytest.raises(InputError, match="unknown gap hyperparameter 'zeta_'"):
        create_potential("gap", frames[:5], zeta_=2)
    with pytest.raises(InputError, match="zeta"):
        create_potential("gap", frames[:5], zeta=0)
    with pytest.raises(InputError, match="sparse_method"):
        create_potential("gap", frames[:5], sparse_method="random")
    with pytest.raises(InputError, match="smoothing"):
        create_potential("gap", frames[:5], cutoff=3.0, smoothing=3.0)
    pot = create_potential("gap", frames[:5], **SMALL)
    with pytest.raises(InputError, match=r"unknown gap fit setting 'energy_sgima'.*did you mean energy_sigma"):
        pot.fit(frames[:5], energy_sgima=0.01)
    with pytest.raises(InputError, match="force_sigma"):
        pot.fit(frames[:5], force_sigma=-1.0)
    with pytest.raises(InputError, match="no training"):
        pot.fit([])
    with pytest.raises(InputError, match="not been fitted"):
        pot.predict(frames[:1])


def test_partly_periodic_cells_are_a_clear_error(fitted):
    slab = water_cluster(4, spacing=3.1, periodic=True)
    slab.pbc = [True, True, False]
    with pytest.raises(InputError, match="periodic in all three directions or in none"):
        fitted.predict([slab])
    assert len(fitted.predict([]).energy) == 0


def test_sparse_points_per_element_and_selection(frames):
    for method in ("fps", "cur"):
        pot = create_potential("gap", frames[:20], **{**SMALL, "n_sparse": 7, "sparse_method": method})
        pot.fit(frames[:20])
        assert pot.n_sparse == [7, 7]
        for s in pot.sparse:  # unit power spectra taken from the training environments
            np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1.0, atol=1e-12)
    # more sparse points than environments: all of them (20 O environments), no duplicates
    pot = create_potential("gap", frames[:20], **{**SMALL, "n_sparse": 500})
    pot.fit(frames[:20])
    assert pot.n_sparse == [40, 20]


def test_baseline_fitted_on_composition(frames):
    from ase.calculators.singlepoint import SinglePointCalculator

    # energies that are exactly linear in composition: the GP has nothing left to learn
    data = [a.copy() for a in frames[:6]]
    e_h, e_o = -13.1, -2040.7
    for k, a in enumerate(data):
        if k % 2:
            a += a[:1]
            a.positions[-1] += [0.0, 0.0, 6.0]  # a lone O beyond the cutoff
        n_o = a.get_chemical_symbols().count("O")
        a.calc = SinglePointCalculator(a, energy=2 * e_h + n_o * e_o, forces=np.zeros((len(a), 3)))
    pot = create_potential("gap", data, **SMALL)
    pot.fit(data)
    np.testing.assert_allclose(pot.baseline, [e_h, e_o], atol=1e-8)
    np.testing.assert_allclose(np.concatenate(pot.weights), 0.0, atol=1e-6)


def test_variance_grows_away_from_data(fitted, frames):
    """σ is small on configurations like the training ones and grows on hotter and on distorted ones."""
    near = fitted.predict(frames[40:60])
    hot = labelled_water(20, temperature=2000.0, seed=3)
    far = fitted.predict(hot)
    assert np.median(far.score()) > 1.5 * np.median(near.score())
    assert np.median(far.energy_std) > np.median(near.energy_std)
    # stretch one O-H bond step by step: σ of the forces grows monotonically
    base = frames[45].copy()
    bond = base.positions[1] - base.positions[0]
    stretched = []
    for f in (1.0, 1.15, 1.3, 1.5):
        a = base.copy()
        a.positions[1] = a.positions[0] + f * bond
        stretched.append(a)
    score = fitted.predict(stretched).score()
    assert np.all(np.diff(score) > 0), score
    # on its own training data σ is near the force noise
    train = fitted.predict(frames[:30])
    assert np.median(train.score()) < np.median(near.score()) * 1.5


def test_variance_ranks_errors_on_hot_frames(fitted):
    """The point of the variance: frames with larger σ have larger true force errors (Spearman)."""
    from mlpkit.uncertainty.calibration import calibrate

    hot = labelled_water(40, temperature=1200.0, seed=5)
    cal = calibrate(fitted, hot)
    assert cal.spearman_config > 0.5, cal
    assert cal.scale > 0


def test_variance_off_gives_same_mean(fitted, frames):
    images = [*frames[40:43], water_cluster(4, spacing=3.1, seed=5, periodic=True)]
    with_var = fitted.predict(images, stress=True)
    fitted.variance = False
    try:
        plain = fitted.predict(images, stress=True)
    finally:
        fitted.variance = True
    assert plain.energy_std is None and plain.forces_std is None
    np.testing.assert_allclose(plain.energy, with_var.energy, rtol=0, atol=1e-9)
    for a, b in zip(plain.forces, with_var.forces, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    np.testing.assert_allclose(plain.stress, with_var.stress, rtol=0, atol=1e-10, equal_nan=True)
    assert np.isnan(plain.stress[0]).all() and np.isfinite(plain.stress[3]).all()


def test_calculator_reports_uncertainty(fitted, frames):
    atoms = frames[50].copy()
    atoms.calc = fitted.calculator()
    atoms.get_potential_energy()
    res = atoms.calc.results
    assert res["energy_std"] > 0 and res["forces_std"].shape == (3, 3)
    assert res["uncertainty"] == pytest.approx(np.linalg.norm(res["forces_std"], axis=1).max())


def test_save_load_keeps_variance_and_uses_no_pickle(fitted, frames, tmp_path):
    import torch

    import mlpkit

    fitted.save(tmp_path / "m")
    loaded = mlpkit.load(tmp_path / "m")
    assert isinstance(loaded, GAPPotential) and loaded.n_sparse == fitted.n_sparse
    a, b = fitted.predict(frames[50:55]), loaded.predict(frames[50:55])
    np.testing.assert_array_equal(a.energy_std, b.energy_std)
    for x, y in zip(a.forces_std, b.forces_std, strict=True):
        np.testing.assert_array_equal(x, y)
    state = torch.load(tmp_path / "m" / "weights.pt", weights_only=True)  # plain tensors only
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float64 for v in state.values())
    plain = GAPPotential.load(tmp_path / "m", variance=False)
    assert plain.predict(frames[50:51]).forces_std is None


def test_large_structure_in_chunks_matches_small_batches(fitted):
    """Structures above soap.CHUNK_ATOMS are computed in chunks of centres: same numbers as in one go."""
    from mlpkit.potentials.gap import soap

    box = water_cluster(27, spacing=3.1, seed=8, periodic=True)
    ref = fitted.predict([box], stress=True)
    keep = soap.CHUNK_ATOMS
    soap.CHUNK_ATOMS = 20
    try:
        chunked = fitted.predict([box], stress=True)
    finally:
        soap.CHUNK_ATOMS = keep
    np.testing.assert_allclose(chunked.energy, ref.energy, rtol=0, atol=1e-9)
    np.testing.assert_allclose(chunked.forces[0], ref.forces[0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(chunked.forces_std[0], ref.forces_std[0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(chunked.stress, ref.stress, rtol=0, atol=1e-10)


def test_valid_fraction_reports_validation_errors(frames):
    """As ``mlpkit train`` calls it: a seeded split, errors reported under the trainer's names."""
    pot = create_potential("gap", frames[:20], **SMALL)
    history = pot.fit(frames[:20], valid_fraction=0.25, seed=1, progress=False, checkpoint_dir="unused")
    assert pot.metadata["n_train"] == 15 and pot.metadata["n_valid"] == 5
    record = history.epochs[0]
    assert {"train_energy_mae", "train_forces_mae", "valid_energy_mae", "valid_forces_rmse"} <= set(record)
    assert record["train_forces_mae"] > 0 and record["valid_forces_mae"] > 0


def test_descriptors_are_the_kernel_space(fitted, frames):
    images = [frames[0], water_cluster(2, seed=1)]
    d = fitted.descriptors(images)
    assert [x.shape for x in d] == [(3, fitted.descriptor.n_features), (6, fitted.descriptor.n_features)]
    np.testing.assert_allclose(np.linalg.norm(d[1], axis=1), 1.0, atol=1e-12)
    # atom order kept: the oxygen of frame 0 is most like the O sparse points
    o, h = fitted.species.index("O"), fitted.species.index("H")
    assert (d[0][0] @ fitted.sparse[o].T).max() > (d[0][0] @ fitted.sparse[h].T).max()


def test_batch_selection_skips_near_copies(fitted, frames):
    """Greedy variance selection: the first pick is the top-σ frame, and an exact copy of a pick is never picked
    next (its σ collapses once the pick counts as labelled), while plain top-k would take both."""
    hot = labelled_water(10, temperature=2000.0, seed=3)
    pool = [*frames[40:50], *hot, hot[int(np.argmax(fitted.predict(hot).score()))].copy()]
    score = fitted.predict(pool).score()
    top2 = set(np.argsort(-score)[:2].tolist())
    assert top2 == {10 + int(np.argmax(score[10:20])), 20}  # the top frame and its copy
    picks = fitted.select(pool, 4)
    assert picks[0] == int(np.argmax(score))
    assert len(top2 & set(picks[:2])) == 1  # not both copies
    assert len(set(picks)) == 4
    with pytest.raises(InputError, match="fitted"):
        create_potential("gap", frames[:3], **SMALL).select(pool, 2)
