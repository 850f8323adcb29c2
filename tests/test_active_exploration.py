"""Active-learning exploration and initial-set choices: uncertainty-driven MD (forces and stress are exact
derivatives of the biased energy) and the farthest-point initial set with the baseline's own random initial set."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from mlpkit.config.active_learning import ActiveLearningConfig
from mlpkit.errors import InputError
from mlpkit.uncertainty import Committee
from mlpkit.uncertainty.bias import UncertaintyBiasedCalculator, biased_energy_forces
from mlpkit.workflows.active_learning.select import diverse_subset, frame_fingerprints
from mlpkit.workflows.engine import WorkflowState

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
from al_helpers import tiny_config  # noqa: E402


def _results(run_dir: Path) -> dict:
    """Each finished step's result, from the run's state file."""
    state = WorkflowState(run_dir / "state.json")
    return {k: state.result(k) for k in state.steps}


def _committee(images, n=3) -> Committee:
    from mlpkit.potentials.registry import create_potential

    # untrained members with different initial weights disagree everywhere: a strong, smooth σ_E
    return Committee(
        [
            create_potential("bpnn", images, hidden=[8], n_radial=6, n_angular=2, init_seed=k, dtype="float64")
            for k in range(n)
        ]
    )


def _distorted_water(seed: int) -> Atoms:
    a = molecule("H2O")
    a.center(vacuum=3.0)
    a.positions += np.random.default_rng(seed).normal(0, 0.05, a.positions.shape)
    return a


def test_bias_is_bounded_by_its_depth_and_vanishes_when_the_members_agree():
    rng = np.random.default_rng(0)
    energies = rng.normal(scale=0.05, size=4)
    forces = rng.normal(size=(4, 3, 3))
    e, f, sigma, bias = biased_energy_forces(energies, forces, 0.2, 0.02)
    assert sigma == pytest.approx(energies.std())
    assert e == pytest.approx(energies.mean() + 0.2 * (np.exp(-(energies.std() ** 2) / (3 * 0.02**2)) - 1))
    np.testing.assert_allclose(f - bias, forces.mean(axis=0))
    # far from agreement the bias tends to −depth and its force to zero: a walker cannot run away on it
    e_far, _, _, b_far = biased_energy_forces(energies * 100, forces, 0.2, 0.02)
    assert e_far - 100 * energies.mean() == pytest.approx(-0.2) and np.abs(b_far).max() < 1e-12
    # a committee in agreement feels no bias, and depth 0 is the committee mean
    e1, _, s1, b1 = biased_energy_forces(np.ones(4), forces, 0.2, 0.02)
    assert s1 == 0.0 and not b1.any() and e1 == pytest.approx(1.0)
    e0, f0, _, b0 = biased_energy_forces(energies, forces, 0.0, 0.02)
    assert e0 == pytest.approx(energies.mean()) and not b0.any()
    np.testing.assert_allclose(f0, forces.mean(axis=0))


def test_biased_forces_are_minus_the_gradient_of_the_biased_energy():
    atoms = _distorted_water(1)
    com = _committee([atoms])
    sigma = com.predict([atoms]).energy_std[0]
    calc = UncertaintyBiasedCalculator(com, depth=0.5, width=sigma / np.sqrt(len(atoms)))  # steepest near here
    atoms.calc = calc
    forces = atoms.get_forces()
    res = dict(calc.results)
    numeric = calculate_numerical_forces(atoms, eps=1e-4)
    np.testing.assert_allclose(forces, numeric, atol=1e-7)
    assert res["energy_std"] > 1e-3  # the test is about a real bias
    assert res["energy_std"] == pytest.approx(sigma)
    assert res["bias_energy"] == pytest.approx(0.5 * (np.exp(-1.0) - 1.0))
    assert np.abs(res["bias_forces"]).max() > 1e-3
    # the reported uncertainty is the plain committee's
    plain = com.predict([atoms])
    np.testing.assert_allclose(res["forces_std"], plain.forces_std[0])
    np.testing.assert_allclose(forces - res["bias_forces"], plain.forces[0], atol=1e-10)


def test_biased_stress_is_the_strain_derivative_of_the_biased_energy():
    atoms = molecule("H2O")
    atoms.set_cell([3.2, 3.4, 3.6])
    atoms.pbc = True
    atoms.positions += np.random.default_rng(2).normal(0, 0.05, atoms.positions.shape)
    com = _committee([atoms])
    sigma = com.predict([atoms]).energy_std[0]
    calc = UncertaintyBiasedCalculator(com, depth=0.5, width=sigma / np.sqrt(len(atoms)))
    atoms.calc = calc
    stress = atoms.get_stress()
    numeric = calculate_numerical_stress(atoms, eps=1e-5)
    np.testing.assert_allclose(stress, numeric, atol=1e-6)


def test_bias_needs_a_committee_and_valid_settings():
    from mlpkit.potentials.registry import create_potential

    pot = create_potential("bpnn", [_distorted_water(0)], hidden=[4], n_radial=4, n_angular=0)
    with pytest.raises(InputError, match="committee"):
        UncertaintyBiasedCalculator(pot, 0.1, 0.01)
    with pytest.raises(InputError, match="depth"):
        UncertaintyBiasedCalculator(_committee([_distorted_water(0)], 2), -1.0, 0.01)
    with pytest.raises(InputError, match="width"):
        UncertaintyBiasedCalculator(_committee([_distorted_water(0)], 2), 0.1, 0.0)


def test_diverse_subset_takes_the_centre_and_the_outliers():
    base = molecule("H2O")
    pool = []
    for k in range(40):  # 40 near-equilibrium frames ...
        a = base.copy()
        a.positions += np.random.default_rng(k).normal(0, 0.005, a.positions.shape)
        pool.append(a)
    outliers = [3, 11, 25, 37]
    for k, s in zip(outliers, (0.3, -0.25, 0.2, -0.3), strict=True):  # ... and 4 with one O-H bond stretched
        pool[k].positions[1] += s * (pool[k].positions[1] - pool[k].positions[0])
    picks = diverse_subset(pool, 5)
    assert len(picks) == len(set(picks)) == 5
    assert set(outliers) <= set(picks)
    x = frame_fingerprints(None, pool)
    centre = np.argmin(np.linalg.norm(x - x.mean(axis=0), axis=1))
    assert picks[0] not in outliers
    assert np.linalg.norm(x[picks[0]] - x[centre]) < np.linalg.norm(x[outliers[0]] - x[centre])
    assert diverse_subset(pool[:3], 5) == [0, 1, 2]


def test_farthest_point_initial_set_needs_a_pool():
    base = {"structure": "H2O", "reference": {"method": "emt"}}
    cfg = ActiveLearningConfig.from_dict({**base, "initial": {"selection": "farthest_point"}})
    assert cfg.initial.pool_factor == 10
    with pytest.raises(InputError, match="pool"):
        ActiveLearningConfig.from_dict({**base, "initial": {"selection": "farthest_point", "sampling": "rattle"}})


def test_farthest_point_initial_set_and_the_baselines_own_random_initial_set(tmp_path):
    from mlpkit.data import Dataset
    from mlpkit.data.hashing import configuration_hash
    from mlpkit.files import read_images
    from mlpkit.workflows.active_learning.loop import run_active_learning

    raw = tiny_config(
        str(tmp_path / "calls.log"),
        initial={"selection": "farthest_point", "pool_factor": 3},
        explore={"bias": 0.1, "bias_width": 0.005},
        max_iterations=1,
        committee={"fit": {"epochs": 20, "batch_size": 4, "learning_rate": 0.01}},
    )
    cfg = ActiveLearningConfig.from_dict(raw)
    run_dir = tmp_path / "run"
    logs: list[str] = []
    run_active_learning(cfg, run_dir, progress=False, log=logs.append)

    pool = read_images(run_dir / "initial-pool.extxyz")
    chosen = read_images(run_dir / "initial.extxyz")
    assert len(pool) == 24 and len(chosen) == 8
    pool_hashes = [configuration_hash(a) for a in pool]
    assert {configuration_hash(a) for a in chosen} <= set(pool_hashes)
    assert sorted(int(a.info["pool_index"]) for a in chosen) == sorted(diverse_subset(pool, 8, cfg.committee))

    state = _results(run_dir)
    assert state["baseline.initial"]["labelled_in_source"] == 8
    base_initial = Dataset(run_dir / "baseline" / "baseline.db").to_atoms(source="initial")
    assert len(base_initial) == 8
    assert {configuration_hash(a) for a in base_initial} <= set(pool_hashes)
    assert {configuration_hash(a) for a in base_initial} != {configuration_hash(a) for a in chosen}
    # the random curve's first point is its own committee (trained on its own initial set), not AL's
    assert any("random baseline point 0: training" in m for m in logs)
    assert state["baseline.point0"]["n_labels"] == 8
    # walkers ran on the biased surface and their uncertainty was still watched
    explored = json.loads((run_dir / "iter-000" / "explore.json").read_text())
    assert explored["steps_planned"] > 0


def test_the_baselines_initial_set_follows_the_setting():
    from mlpkit.workflows.active_learning.baseline import own_initial_set

    base = {"structure": "H2O", "reference": {"method": "emt"}}

    def cfg(initial: dict, baseline: dict):
        return ActiveLearningConfig.from_dict({**base, "initial": initial, "baseline": baseline})

    assert not own_initial_set(cfg({}, {}))  # AL's initial set is itself random MD frames: shared
    assert own_initial_set(cfg({"selection": "farthest_point"}, {}))  # AL chose: random draws its own
    assert not own_initial_set(cfg({"selection": "farthest_point"}, {"initial": "shared"}))
    assert own_initial_set(cfg({}, {"initial": "random"}))
    with pytest.raises(InputError, match="rattle"):
        cfg({"sampling": "rattle"}, {"initial": "random"})


def test_active_learning_labels_on_a_dask_scheduler_and_refuses_two_targets(tmp_path):
    """The loop's labels go where `execution` says: here a running Dask scheduler (as on a cluster)."""
    from distributed import LocalCluster

    from mlpkit.workflows.active_learning.loop import run_active_learning

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        raw = tiny_config(
            str(tmp_path / "calls.log"),
            max_iterations=1,
            committee={"fit": {"epochs": 10, "batch_size": 4}},
            baseline={"enabled": False},
            execution={"workers": 2, "scheduler": cluster.scheduler_address},
        )
        run_active_learning(ActiveLearningConfig.from_dict(raw), tmp_path / "run", progress=False)
    state = _results(tmp_path / "run")
    for step in ("initial", "iter0.label"):
        assert state[step]["labelled"] > 0
        assert state[step]["where"] == f"scheduler {cluster.scheduler_address}", state[step]
    with pytest.raises(InputError, match="either scheduler or jobqueue"):
        ActiveLearningConfig.from_dict(
            {**raw, "execution": {"scheduler": "tcp://host:8786", "jobqueue": {"kind": "slurm"}}}
        )
    with pytest.raises(InputError, match="address"):
        ActiveLearningConfig.from_dict({**raw, "execution": {"scheduler": "host:8786"}})


def test_a_stopped_run_goes_on_when_its_stop_settings_are_tightened(tmp_path):
    """Raising max_iterations (or tightening the target) on resume re-opens a finished run at its last iteration:
    no label is computed twice, the random curve is recomputed for the new end point, looser settings change
    nothing."""
    from mlpkit.workflows.active_learning.loop import run_active_learning

    log = tmp_path / "calls.log"
    run_dir = tmp_path / "run"
    raw = tiny_config(
        str(log),
        max_iterations=1,
        label_budget=40,
        committee={"fit": {"epochs": 10, "batch_size": 4}},
        stop={"force_mae": None, "candidate_fraction": 1e-9},
    )
    first = run_active_learning(ActiveLearningConfig.from_dict(raw), run_dir, progress=False)
    assert "iteration cap (1)" in first.stopped_because
    n_calls = len(log.read_text().split())
    base_first = json.loads((run_dir / "baseline" / "baseline.json").read_text())

    messages: list[str] = []
    second = run_active_learning(
        ActiveLearningConfig.from_dict({**raw, "max_iterations": 2}), run_dir, progress=False, log=messages.append
    )
    assert any("going on from iteration 1" in m for m in messages)
    assert "iteration cap (2)" in second.stopped_because
    assert second.iterations == 2 and second.n_labels > first.n_labels
    calls = log.read_text().split()
    assert len(calls) == len(set(calls)), "a reference calculation was repeated"
    assert len(calls) > n_calls
    base_second = json.loads((run_dir / "baseline" / "baseline.json").read_text())
    assert base_second["al_labels"] == second.n_labels != base_first["al_labels"]
    # each random point trains on its own prefix of the draws, not on everything the re-opened run holds
    counts = [p["n_labels"] for p in base_second["points"]]
    assert counts[0] == 8 and counts == sorted(set(counts))
    assert counts[: len(base_first["points"])] == [p["n_labels"] for p in base_first["points"]]

    # looser settings leave the finished run where it is
    messages.clear()
    third = run_active_learning(ActiveLearningConfig.from_dict(raw), run_dir, progress=False, log=messages.append)
    assert third.iterations == 2 and third.stopped_because == second.stopped_because
    assert not any("going on" in m for m in messages)
    assert len(log.read_text().split()) == len(calls)


def test_a_random_curve_point_trains_on_its_own_prefix_of_the_draws(tmp_path):
    """A re-opened run's baseline holds more draws than its early points use: each point gets the initial set and
    the first n draws in drawing order (a failed draw counts as drawn), whatever else the store holds."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from mlpkit.data import Dataset
    from mlpkit.workflows.active_learning.baseline import _point_data

    def labelled(k: int) -> Atoms:
        a = _distorted_water(100 + k)
        a.calc = SinglePointCalculator(a, energy=-float(k), forces=np.zeros((3, 3)))
        return a

    db = Dataset(tmp_path / "b.db")
    db.add([labelled(k) for k in range(3)], method="m", source="initial", labelled=True, split="train")
    db.add([labelled(3)], method="m", source="initial", labelled=True, split="valid")
    ids = []
    for k in range(4, 10):  # six draws, in order; the second one fails
        ids += db.add(
            [labelled(k)], method="m", source=f"random-{k}", labelled=True, split="valid" if k == 6 else "train"
        ).ids
    db.record_failure(ids[1], "SCF did not converge")
    for n_random, expected in [(0, []), (1, [4]), (2, [4]), (3, [4, 6]), (6, [4, 6, 7, 8, 9])]:
        train, valid = _point_data(db, "m", n_random)
        got = sorted(int(-a.get_potential_energy()) for a in [*train, *valid])
        assert got == [0, 1, 2, 3, *expected], (n_random, got)
        assert {a.info["split"] for a in valid} == {"valid"}


def test_error_target_and_the_most_uncertain_trusted_frames():
    from types import SimpleNamespace

    from mlpkit.workflows.active_learning.select import most_uncertain_trusted
    from mlpkit.workflows.active_learning.stop import error_target_missed

    st = SimpleNamespace(force_mae=0.04, energy_mae_per_atom=None)
    assert error_target_missed(st, {"forces_mae": 0.08})
    assert not error_target_missed(st, {"forces_mae": 0.03})
    assert not error_target_missed(st, None)  # no test set: nothing says the calm committee is wrong
    assert not error_target_missed(SimpleNamespace(force_mae=None, energy_mae_per_atom=None), {"forces_mae": 9.0})
    assert error_target_missed(SimpleNamespace(force_mae=None, energy_mae_per_atom=1e-3), {"energy_mae_per_atom": 0.1})
    u = np.array([0.1, 0.5, np.nan, 0.3, 0.9, 0.2])
    trusted = np.array([True, True, True, True, False, True])
    assert most_uncertain_trusted(u, trusted, 1, pool_factor=2).tolist() == [1, 3]
    assert most_uncertain_trusted(u, trusted, 3).tolist() == [1, 3, 5, 0]
    assert most_uncertain_trusted(u, trusted, 0).tolist() == []


def test_a_calm_committee_above_the_error_target_still_labels_its_most_uncertain_frames(tmp_path):
    """Every explored frame inside the trusted range (lower bound far above any σ) while the test error is above the
    stop target: the selection fills up to top_k with the most uncertain trusted frames instead of labelling
    nothing, and says so."""
    from mlpkit.workflows.active_learning.loop import run_active_learning

    raw = tiny_config(
        str(tmp_path / "calls.log"),
        max_iterations=1,
        trust={"lower": 50.0, "upper": 100.0},
        stop={"force_mae": 1e-5},
        baseline={"enabled": False},
        committee={"fit": {"epochs": 10, "batch_size": 4}},
    )
    logs: list[str] = []
    run_active_learning(ActiveLearningConfig.from_dict(raw), tmp_path / "run", progress=False, log=logs.append)
    sel = json.loads((tmp_path / "run" / "iter-000" / "selection.json").read_text())
    assert sel["n_candidates"] == 0 and sel["n_trusted"] == sel["n_frames"] > 3
    assert sel["n_selected"] == 3 and "above the stop target" in sel["fallback"]
    explored = [float(f) for f in sel["selected_uncertainty"]]
    assert all(np.isfinite(explored)) and any("most uncertain trusted" in m for m in logs)
