"""Committee statistics, bootstrap, calibration numbers on known cases, MC-dropout, save/load."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from bpnn_contract import SMALL_BPNN, SmallBPNNContract
from mlpkit.errors import InputError
from mlpkit.potentials.base import FitHistory, Potential, Prediction
from mlpkit.potentials.registry import register_family
from mlpkit.potentials.store import read_model_json, write_model_dir
from mlpkit.uncertainty import (
    Committee,
    MCDropout,
    bootstrap_resample,
    calibrate,
    calibrate_prediction,
    combine_predictions,
    plot_calibration,
    train_committee,
)


@register_family
class _Spring(Potential):
    """E = k Σ_{i<j} (r_ij - r0)²: a closed-form potential whose predictions a test can compute by hand."""

    family = "test-spring"

    def __init__(self, k: float, r0: float = 1.0, species=("H", "O")):
        self.k, self.r0 = float(k), float(r0)
        self.species = tuple(species)
        self.cutoff = 5.0
        self.metadata = {}

    def fit(self, train, valid=None, **settings) -> FitHistory:
        return FitHistory()

    def predict(self, images, *, stress=False) -> Prediction:
        energies, forces = [], []
        for atoms in images:
            x = atoms.positions
            d = x[:, None, :] - x[None, :, :]
            r = np.linalg.norm(d, axis=-1)
            iu = np.triu_indices(len(atoms), 1)
            energies.append(self.k * np.sum((r[iu] - self.r0) ** 2))
            with np.errstate(invalid="ignore", divide="ignore"):
                g = np.where(r[..., None] > 0, 2 * self.k * (r - self.r0)[..., None] * d / r[..., None], 0.0)
            forces.append(-g.sum(axis=1))
        return Prediction(energy=np.array(energies), forces=forces)

    def save(self, path):
        write_model_dir(path, {"family": self.family, "k": self.k, "r0": self.r0, "species": list(self.species)})

    @classmethod
    def load(cls, path):
        m = read_model_json(path)
        return cls(m["k"], m["r0"], m["species"])


def _water(shift: float = 0.0) -> Atoms:
    a = Atoms("OH2", positions=[[0, 0, 0], [0.96 + shift, 0, 0], [-0.24, 0.93, 0]])
    return a


def test_committee_mean_and_population_std_match_numpy(tmp_path):
    ks = [1.0, 2.0, 4.0]
    com = Committee([_Spring(k) for k in ks])
    images = [_water(0.0), _water(0.1), _water(-0.05)]
    pred = com.predict(images)
    member = [_Spring(k).predict(images) for k in ks]
    e = np.array([p.energy for p in member])
    np.testing.assert_allclose(pred.energy, e.mean(0))
    np.testing.assert_allclose(pred.energy_std, e.std(0))  # population (1/M), as the source defines σ_E
    for j in range(3):
        f = np.array([p.forces[j] for p in member])
        np.testing.assert_allclose(pred.forces[j], f.mean(0))
        np.testing.assert_allclose(pred.forces_std[j], f.std(0))
    # DP-GEN's deviation: max over atoms of the norm of the per-atom force std
    expected = [np.linalg.norm(np.array([p.forces[j] for p in member]).std(0), axis=1).max() for j in range(3)]
    np.testing.assert_allclose(pred.max_force_deviation(), expected)
    assert com.has_uncertainty

    # the ASE calculator exposes the spread
    atoms = images[1].copy()
    atoms.calc = com.calculator()
    atoms.get_forces()
    assert atoms.calc.results["max_force_std"] == pytest.approx(expected[1])
    assert atoms.calc.results["energy_std"] == pytest.approx(e.std(0)[1])

    # save/load keeps every member
    com.save(tmp_path / "c")
    back = Committee.load(tmp_path / "c")
    np.testing.assert_allclose(back.predict(images).energy_std, pred.energy_std)
    from mlpkit.potentials.registry import load_potential

    assert isinstance(load_potential(tmp_path / "c"), Committee)


def test_identical_members_have_zero_spread_and_bad_committees_are_refused():
    com = Committee([_Spring(2.0), _Spring(2.0)])
    p = com.predict([_water(0.2)])
    assert p.energy_std[0] == 0 and np.all(p.forces_std[0] == 0)
    with pytest.raises(InputError):
        Committee([_Spring(1.0)])
    with pytest.raises(InputError, match="species"):
        Committee([_Spring(1.0), _Spring(1.0, species=("C", "H"))])
    with pytest.raises(InputError):
        combine_predictions([p])


def test_bootstrap_is_seeded_same_size_and_keeps_every_element():
    images = [_water(0.01 * i) for i in range(9)] + [Atoms("CO", positions=[[0, 0, 0], [1.1, 0, 0]])]
    a = bootstrap_resample(images, 3)
    b = bootstrap_resample(images, 3)
    c = bootstrap_resample(images, 4)
    assert [id(x) for x in a] == [id(x) for x in b]
    assert [id(x) for x in a] != [id(x) for x in c]
    assert len(a) == len(images)
    assert len({id(x) for x in a}) < len(images)  # with replacement
    assert {"C", "H", "O"} <= set().union(*(x.get_chemical_symbols() for x in a))


def _labelled(atoms: Atoms, forces: np.ndarray) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=forces)
    return atoms


def test_calibration_recovers_a_known_scale_and_ranking():
    rng = np.random.default_rng(0)
    images, forces_pred, forces_std = [], [], []
    for i in range(400):
        sigma = np.full((3, 3), 0.01 * (1 + i % 20))  # σ varies over frames
        err = rng.normal(0, 3.0 * sigma)  # true errors are N(0, (3σ)²)
        f_ref = rng.normal(0, 1, (3, 3))
        images.append(_labelled(_water(), f_ref))
        forces_pred.append(f_ref + err)
        forces_std.append(sigma)
    pred = Prediction(energy=np.zeros(400), forces=forces_pred, energy_std=np.zeros(400), forces_std=forces_std)
    cal = calibrate_prediction(images, pred)
    assert cal.scale_gaussian == pytest.approx(3.0, rel=0.05)
    assert cal.spearman_config > 0.6  # larger σ, larger errors
    assert cal.scale > 1.5  # raw σ is too small; the fitted factor says so
    # errors exactly proportional to σ: perfect ranking and the exact factor
    exact = [_labelled(_water(), np.zeros((3, 3))) for _ in range(20)]
    s = [np.full((3, 3), 0.01 * (k + 1)) for k in range(20)]
    p2 = Prediction(energy=np.zeros(20), forces=[2.0 * x for x in s], energy_std=np.zeros(20), forces_std=s)
    cal2 = calibrate_prediction(exact, p2)
    assert cal2.spearman_config == pytest.approx(1.0)
    assert cal2.scale == pytest.approx(2.0)
    assert cal2.calibrated(0.1) == pytest.approx(0.2)
    with pytest.raises(InputError):
        calibrate_prediction(exact, Prediction(energy=np.zeros(20), forces=p2.forces))


def test_calibrate_a_committee_and_plot(tmp_path):
    com = Committee([_Spring(1.0), _Spring(1.3), _Spring(0.8)])
    truth = _Spring(1.1)
    images = []
    for i in range(12):
        a = _water(0.03 * (i - 6))
        images.append(_labelled(a, truth.predict([a]).forces[0]))
    cal = calibrate(com, images)
    assert cal.n_configs == 12 and np.isfinite(cal.scale) and cal.scale > 0
    assert -1 <= cal.spearman_config <= 1
    png = plot_calibration(cal, tmp_path / "cal.png")
    assert png.stat().st_size > 1000
    with pytest.raises(InputError, match="no uncertainty"):
        calibrate(truth, images)


@pytest.fixture(scope="module")
def water_frames(_water_frames_cached):
    return _water_frames_cached


def test_train_committee_bpnn_members_differ_and_roundtrip(water_frames, tmp_path):
    train, valid, test = water_frames[0:80:8], water_frames[85:90], water_frames[200:210]
    com = train_committee(
        train,
        valid,
        n_members=2,
        seed=1,
        hyperparameters={"hidden": [8], "n_radial": 6, "n_angular": 2},
        epochs=40,
        batch_size=4,
        patience=40,
        progress=False,
    )
    assert isinstance(com, Committee) and com.n_members == 2
    pred = com.predict(test)
    assert np.all(pred.energy_std > 0)  # different seeds and resamples give different members
    assert pred.max_force_deviation().shape == (10,)
    com.save(tmp_path / "m")
    back = Committee.load(tmp_path / "m")
    np.testing.assert_allclose(back.predict(test).energy, pred.energy, rtol=1e-10)
    # warm start from the previous committee keeps the shape and still trains
    com2 = train_committee(train, valid, n_members=2, seed=1, previous=com, epochs=5, batch_size=4, progress=False)
    assert com2.n_members == 2 and com2.members[0] is not com.members[0]


def test_mc_dropout_spread_is_seeded(water_frames, tmp_path):
    from mlpkit.potentials.registry import create_potential

    train = water_frames[0:60:6]
    base = create_potential("bpnn", train, hidden=[16], n_radial=6, n_angular=0, dropout=0.2)
    base.fit(train, None, epochs=10, batch_size=5, progress=False)
    mc = MCDropout(base, n_samples=8, seed=3)
    p1 = mc.predict(water_frames[100:103])
    assert np.all(p1.energy_std > 0) and mc.has_uncertainty
    p2 = MCDropout(base, n_samples=8, seed=3).predict(water_frames[100:103])
    np.testing.assert_allclose(p1.energy, p2.energy)
    mc.save(tmp_path / "mc")
    from mlpkit.potentials.registry import load_potential

    back = load_potential(tmp_path / "mc")
    assert isinstance(back, MCDropout) and back.n_samples == 8
    np.testing.assert_allclose(back.predict(water_frames[100:103]).energy, p1.energy)
    with pytest.raises(InputError, match="dropout"):
        MCDropout(create_potential("bpnn", train, hidden=[4], n_radial=4, n_angular=0)).predict(train[:1])


class TestCommitteeContract(SmallBPNNContract):
    """A committee is a potential like any other: the shared contract, run on its mean."""

    fit_settings = {**SmallBPNNContract.fit_settings, "bootstrap": False}

    def make_potential(self, train):
        from mlpkit.potentials import create_potential

        # members differ by their fit seed (batch order), as in a committee trained by mlpkit.uncertainty.fit_model
        return Committee([create_potential("bpnn", train, **SMALL_BPNN) for _ in range(2)])


class TestMCDropoutContract(SmallBPNNContract):
    """MC-dropout runs the contract's checks that apply to it: save/load, unknown elements, learning tiny data, open
    structures. The derivative, invariance and cutoff checks do not apply: the dropout masks are drawn per call and
    per atom row, so the mean over passes is a different random function for every batch (a displaced copy, a
    permuted or a grown structure get other masks). Each pass is the BPNN network, whose checks TestBPNNContract runs.
    """

    tiny_energy_mae = 2e-3
    tiny_forces_mae = 0.08

    _NOT_APPLICABLE = "MC-dropout's masks are drawn per call and per row: its mean is not one smooth function"

    def test_forces_are_minus_energy_gradient(self):
        pytest.skip(self._NOT_APPLICABLE)

    def test_forces_and_stress_periodic(self):
        pytest.skip(self._NOT_APPLICABLE)

    def test_rotation_translation_permutation_invariance(self):
        pytest.skip(self._NOT_APPLICABLE)

    def test_energy_continuous_across_cutoff(self):
        pytest.skip(self._NOT_APPLICABLE)

    fit_settings = {"epochs": 3, "progress": False, "batch_size": 10}
    tiny_fit_settings = {
        "epochs": 400,
        "progress": False,
        "valid_fraction": 0.0,
        "batch_size": 12,
        "learning_rate": 1e-2,
    }
    tiny_energy_mae = 2e-3
    tiny_forces_mae = 0.08

    def make_potential(self, train):
        from mlpkit.potentials import create_potential

        return MCDropout(create_potential("bpnn", train, **SMALL_BPNN, dropout=0.05), n_samples=4, advance=False)


def test_mc_dropout_from_a_learn_config_section(water_frames):
    """``committee: {n_members: 1, dropout_passes: N, hyperparameters: {dropout: p}}`` trains an MC-dropout
    estimator (uncertainty kind "dropout"); without dropout layers, with a committee, or on a family without
    stochastic passes it is refused before anything trains."""
    from pydantic import ValidationError

    from mlpkit.config.model import CommitteeSettings
    from mlpkit.uncertainty.model_spec import fit_model, uncertainty_kind

    hp = {"hidden": [8], "n_radial": 6, "n_angular": 0, "dropout": 0.2}
    section = CommitteeSettings(family="bpnn", n_members=1, dropout_passes=6, hyperparameters=hp,
                                fit={"epochs": 5, "batch_size": 5})  # fmt: skip
    spec = section.spec()
    assert uncertainty_kind(spec) == "dropout"
    model = fit_model(spec, water_frames[0:40:4], seed=2)
    assert isinstance(model, MCDropout) and model.n_samples == 6 and model.seed == 2
    pred = model.predict(water_frames[100:102])
    assert pred.max_force_deviation().shape == (2,) and np.all(pred.max_force_deviation() > 0)
    # warm start from an MC-dropout model refits the same network and wraps it again
    spec_ws = CommitteeSettings(family="bpnn", n_members=1, dropout_passes=6, hyperparameters=hp, warm_start=True,
                                fit={"epochs": 2, "batch_size": 5}).spec()  # fmt: skip
    again = fit_model(spec_ws, water_frames[0:40:4], seed=2, previous=model)
    assert isinstance(again, MCDropout) and not isinstance(again.base, MCDropout)
    with pytest.raises(ValidationError, match="dropout > 0"):
        CommitteeSettings(family="bpnn", n_members=1, dropout_passes=6, hyperparameters={"hidden": [8]})
    with pytest.raises(ValidationError, match="needs n_members 1"):
        CommitteeSettings(family="bpnn", n_members=2, dropout_passes=6, hyperparameters=hp)
    with pytest.raises(ValidationError, match="no stochastic passes"):
        CommitteeSettings(family="gap", n_members=1, dropout_passes=6)
