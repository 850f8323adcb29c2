"""Validation in the stopping rule: a purpose-broken potential that fails one check kind makes the loop's physics
step label configurations aimed at that check (frequencies, NVE, force outliers, extrapolation, test > 2x train),
within its caps, resumably; and the per-temperature error split it relies on."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from mlpkit.config.active_learning import ActiveLearningConfig
from mlpkit.errors import InputError
from mlpkit.potentials.base import Prediction
from mlpkit.sampling import md_snapshots
from mlpkit.validation.by_temperature import errors_by_temperature, frame_temperature
from mlpkit.workflows.active_learning.context import ALRun
from mlpkit.workflows.active_learning.physics import PhysicsCheck, failed_kinds
from validation_potentials import PairLabeler, PairPotential, RepulsivePotential, label, water_data

METHOD = "test:pair*1"
#: a short checklist: the loop's checks are the same, only fewer steps and probes
FAST = {"nve_steps": 200, "invariance_configs": 1, "gradient_configs": 1}


class ForceSpikePotential(PairPotential):
    """The pair potential plus a 30 eV/Å push on atom 0 whenever an O-H bond is stretched beyond 1.0 Å: right at
    equilibrium, absurd forces on hot frames (the max-force check)."""

    family = "test-spike"

    def predict(self, images, *, stress=False):
        p = super().predict(images)
        forces = []
        for a, f in zip(images, p.forces, strict=True):
            f = f.copy()
            if max(a.get_distance(0, 1), a.get_distance(0, 2)) > 1.0:
                f[0, 0] += 30.0
            forces.append(f)
        return Prediction(energy=p.energy, forces=forces)


class QuarticPotential(PairPotential):
    """The pair potential plus K (r_OH − r0)⁴ per O-H bond: indistinguishable from the reference near equilibrium
    (the training data), wrong on stretched bonds (the hot test frames): test error ≫ 2x training error."""

    family = "test-quartic"
    k = 500.0  # eV/Å⁴

    def predict(self, images, *, stress=False):
        p = super().predict(images)
        energies, forces = [], []
        for a, e, f in zip(images, p.energy, p.forces, strict=True):
            f = f.copy()
            for h in (1, 2):
                vec = a.positions[h] - a.positions[0]
                r = float(np.linalg.norm(vec))
                e += self.k * (r - 0.97) ** 4
                g = 4 * self.k * (r - 0.97) ** 3 * vec / r
                f[h] -= g
                f[0] += g
            energies.append(e)
            forces.append(f)
        return Prediction(energy=np.array(energies), forces=forces)


def _test_frames() -> list[Atoms]:
    """Labelled frames of Langevin runs on the reference at 300 and 1000 K (sources test-md-<T>K)."""
    start = water_data(1, 0.0, 0)[0]
    start.calc = None
    out = []
    for k, temp in enumerate((300.0, 1000.0)):
        frames = md_snapshots(start, PairPotential().calculator(), temperature=temp, steps=400, every=40,
                              thermostat="langevin", timestep=0.5, friction=0.02, seed=11 + k)  # fmt: skip
        for f in frames:
            f.info["source"] = f"test-md-{temp:g}K"
        out += label(frames, PairPotential(), METHOD)
    return out


@pytest.fixture(scope="module")
def test_frames() -> list[Atoms]:
    return _test_frames()


@pytest.fixture()
def make_run(tmp_path, test_frames):
    return run_maker(tmp_path, test_frames)


def run_maker(tmp_path, test_frames):
    """An active-learning run whose reference and driver are the exact pair potential, with near-equilibrium
    training data and a 300 K + 1000 K test set; ``make_run(potential, checks)`` puts ``potential`` in as the
    committee of iteration 0."""

    def make(potential, checks: list[str], train_stdev: float = 0.02, **physics):
        cfg = ActiveLearningConfig.from_dict(
            {
                "structure": "H2O",
                "reference": {"method": "emt"},
                "driver": None,
                "explore": {"temperatures": [300.0, 1000.0]},
                "physics": {"checks": checks, "labels_per_check": 3, "validation": FAST, **physics},
                "execution": {"workers": 0},
            }
        )
        run = ALRun(cfg, tmp_path / f"run-{'-'.join(checks)}", progress=False, log=lambda msg: None)
        run.labeler = run.driver = PairLabeler(1.0)
        run.method = METHOD
        data = label(water_data(12, train_stdev, 3), PairPotential(), METHOD)
        run.dataset.add(data[:9], method=METHOD, source="initial", split="train", labelled=True)
        run.dataset.add(data[9:], method=METHOD, source="initial", split="valid", labelled=True)
        run.test = [a.copy() for a in test_frames]
        for a, b in zip(run.test, test_frames, strict=True):
            a.calc = b.calc
        run.load_committee = lambda i: potential
        return run

    return make


def _targeted(run, kind: str) -> list[Atoms]:
    return run.dataset.to_atoms(method=METHOD, source=f"physics-{kind}-iter0")


def test_frequencies_off_label_normal_modes_around_both_minima(make_run):
    run = make_run(PairPotential(scale=1.3), ["vibrations"])
    res = PhysicsCheck(0).run(run)
    assert res["checks"]["vibrations"]["status"] == "FAIL" and res["failed"] == ["vibrations"]
    assert res["continue"] and res["labels_added"] == 3 and res["round"] == 1
    got = _targeted(run, "vibrations")
    assert len(got) == 3
    assert {a.info["minimum"] for a in got} == {"model", "reference"}
    # small displacements about a minimum, not hot frames
    assert all(max(a.get_distance(0, 1), a.get_distance(0, 2)) < 1.2 for a in got)


def test_nve_instability_labels_frames_of_the_run(make_run):
    run = make_run(RepulsivePotential(), ["nve"])
    res = PhysicsCheck(0).run(run)
    assert res["checks"]["nve_stability"]["status"] == "FAIL"
    assert res["failed"] == ["nve"] and res["labels_added"] >= 1
    got = _targeted(run, "nve")
    assert got and all("NVE" in a.info.get("physics_what", "") for a in got)
    # the molecule was flying apart: the labelled frames have stretched bonds the training data lacks
    assert max(max(a.get_distance(0, 1), a.get_distance(0, 2)) for a in got) > 1.1


def test_force_outliers_label_configurations_near_those_test_frames(make_run):
    run = make_run(ForceSpikePotential(), ["max_force"])
    res = PhysicsCheck(0).run(run)
    assert res["checks"]["max_force"]["status"] == "FAIL" and res["failed"] == ["max_force"]
    got = _targeted(run, "max_force")
    assert len(got) == 3 and all("near test frames" in a.info["physics_what"] for a in got)
    # new configurations, not the test frames themselves (those stay in the test set)
    test_positions = [t.positions for t in run.test]
    assert not any(np.allclose(a.positions, p) for a in got for p in test_positions)


def test_extrapolation_warning_labels_configurations_near_the_outside_frames(make_run):
    run = make_run(PairPotential(), ["extrapolation"], train_stdev=0.003)
    res = PhysicsCheck(0).run(run)
    assert res["checks"]["extrapolation"]["status"] == "WARN" and res["failed"] == ["extrapolation"]
    assert len(_targeted(run, "extrapolation")) == 3


def test_test_error_above_twice_training_labels_data_at_the_failing_temperature(make_run):
    run = make_run(QuarticPotential(), ["test_errors"], train_stdev=0.005)
    res = PhysicsCheck(0).run(run)
    assert res["checks"]["test_errors"]["status"] == "FAIL" and res["failed"] == ["test_errors"]
    split = {r["temperature"]: r["forces_mae"] for r in errors_by_temperature(QuarticPotential(), run.test)}
    assert split[1000.0] > split[300.0]
    got = _targeted(run, "test_errors")
    assert len(got) == 3 and all("driver MD" in a.info["physics_what"] for a in got)
    assert {a.info["temperature"] for a in got} <= {300.0, 1000.0}


def test_passing_potential_adds_nothing_and_caps_hold(make_run):
    run = make_run(PairPotential(scale=1.3), ["vibrations"], max_rounds=0)
    res = PhysicsCheck(0).run(run)
    assert res["failed"] == ["vibrations"] and not res["continue"] and res["labels_added"] == 0
    assert "round cap (0)" in res["verdict"]
    assert not _targeted(run, "vibrations")
    run2 = make_run(PairPotential(), ["vibrations", "nve", "max_force"])
    res2 = PhysicsCheck(0).run(run2)
    assert res2["failed"] == [] and not res2["continue"] and "passes" in res2["verdict"]


def test_a_round_killed_after_choosing_its_configurations_relabels_nothing(make_run, monkeypatch):
    run = make_run(PairPotential(scale=1.3), ["vibrations"])
    import mlpkit.workflows.active_learning.physics as physics

    calls = []
    real = physics.add_and_label

    def dying(*args, **kwargs):
        calls.append(1)
        raise KeyboardInterrupt  # killed after targeted.extxyz was written, before any label

    monkeypatch.setattr(physics, "add_and_label", dying)
    with pytest.raises(KeyboardInterrupt):
        run.step(PhysicsCheck(0))
    assert (run.iter_dir(0) / "physics" / "targeted.extxyz").exists() and not run.state.done("iter0.physics")
    monkeypatch.setattr(physics, "add_and_label", real)
    res = run.step(PhysicsCheck(0))
    assert res["labels_added"] == 3
    again = run.step(PhysicsCheck(0))  # finished: read back, nothing rerun
    assert again == res and len(_targeted(run, "vibrations")) == 3


def test_failed_kinds_maps_checklist_rows():
    checks = [
        {"key": "vibrations", "status": "PASS"},
        {"key": "nve_energy", "status": "FAIL"},
        {"key": "extrapolation", "status": "WARN"},
        {"key": "test_errors", "status": "PASS"},
        {"key": "train_errors", "status": "FAIL"},  # not fixable by sampling: never a kind
    ]
    kinds = ["vibrations", "nve", "max_force", "extrapolation", "test_errors"]
    assert failed_kinds(checks, kinds) == ["nve", "extrapolation"]
    assert failed_kinds(checks, ["extrapolation"]) == ["extrapolation"]


def test_errors_by_temperature_lists_the_worst_frames(test_frames):
    frames = test_frames
    rows = errors_by_temperature(QuarticPotential(), frames, worst=2)
    assert [r["temperature"] for r in rows] == [300.0, 1000.0]
    assert [r["n"] for r in rows] == [10, 10]
    for r in rows:
        assert len(r["worst"]) == 2 and r["worst"][0]["forces_mae"] >= r["worst"][1]["forces_mae"]
        w = r["worst"][0]
        assert frame_temperature(frames[w["index"]]) == r["temperature"]
        assert 0.8 < w["min_distance"] < 1.2 and w["max_distance"] > w["min_distance"]
        assert w["forces_max_error"] <= r["forces_max_error"] + 1e-12


def test_physics_settings_refuse_bad_input():
    base = {"structure": "H2O", "reference": {"method": "emt"}, "driver": None}
    for bad, words in [
        ({"checks": ["vibrations", "vibrations"]}, "listed twice"),
        ({"checks": ["invariance"]}, "physics.checks.0"),
        ({"max_rounds": -1}, "physics.max_rounds"),
        ({"validation": {"nve_stepz": 10}}, "not checklist settings"),
    ]:
        with pytest.raises(InputError, match=words):
            ActiveLearningConfig.from_dict({**base, "physics": bad})
    # `mlpkit learn` files opt in by writing the section; the project's loop has it on by default
    assert not ActiveLearningConfig.from_dict(base).physics.enabled
    cfg = ActiveLearningConfig.from_dict({**base, "physics": {}})
    assert cfg.physics.enabled and cfg.physics.max_rounds == 2 and cfg.physics.max_labels == 20
    assert cfg.physics.checks == ["vibrations", "nve", "max_force", "extrapolation", "test_errors"]


def test_the_model_handed_over_passes_the_checklist_when_one_does():
    from mlpkit.workflows.project.learn import pick_iteration

    rows = [
        {"iteration": 0, "valid_force_mae": 0.020, "checklist": None},
        {"iteration": 2, "valid_force_mae": 0.004, "checklist": "fail: vibrations"},  # best error, fails
        {"iteration": 5, "valid_force_mae": 0.006, "checklist": "pass"},
        {"iteration": 7, "valid_force_mae": 0.005, "checklist": "pass"},
    ]
    assert pick_iteration(rows) == 7
    # none passed: the lowest error of all; ties to the later iteration
    failing = [{**r, "checklist": "fail: nve"} for r in rows] + [
        {"iteration": 9, "valid_force_mae": 0.004, "checklist": None}
    ]
    assert pick_iteration(failing) == 9
