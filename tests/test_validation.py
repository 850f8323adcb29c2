"""The validation checklist: each check PASSes on a correct potential and FAILs on one broken on purpose.

The potentials are analytic (tests/validation_potentials.py): a Morse pair potential for a water-like
molecule, and variants whose forces are not the gradient, that feel an external field (not rotation or
translation invariant), that single out atom 0 and 1 (not permutation invariant), that heat up in NVE
(anti-friction), that make the molecule fly apart, or whose forces are huge.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlpkit.errors import InputError, UnsupportedSpeciesError
from mlpkit.validation import FAIL, PASS, SKIP, WARN, ValidationSettings, validate
from mlpkit.validation.checks import check_errors, check_gradients, check_invariances, check_max_force
from mlpkit.validation.extrapolation import check_extrapolation
from mlpkit.validation.metrics import evaluate
from mlpkit.validation.nve import check_nve, run_nve
from mlpkit.validation.vibrations import CACHE_FILE, check_vibrations
from validation_potentials import (
    CommitteePairPotential,
    EMTPotential,
    ExternalFieldPotential,
    HeatingPotential,
    IndexDependentPotential,
    NoDescriptors,
    NotGradientPotential,
    PairLabeler,
    PairPotential,
    RepulsivePotential,
    copper_data,
    water_data,
)

FAST = ValidationSettings(nve_steps=400)


@pytest.fixture(scope="module")
def train():
    return water_data(60, 0.02, seed=1)


@pytest.fixture(scope="module")
def test_set():
    return water_data(20, 0.02, seed=2)


@pytest.fixture(scope="module")
def good_report(train, test_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("good")
    return validate(
        PairPotential(),
        train,
        test_set,
        out_dir=out,
        settings=FAST,
        reference=PairLabeler(1.001),
        progress=False,
        name="pair",
    )


# -- the whole checklist on a correct potential --------------------------------------------------------------


def test_good_potential_passes_every_check(good_report):
    statuses = {c.key: c.status for c in good_report.checks}
    expected = {
        "train_errors",
        "test_errors",
        "rotation_invariance",
        "translation_invariance",
        "permutation_invariance",
        "force_gradient",
        "nve_stability",
        "nve_energy",
        "max_force",
        "vibrations",
        "extrapolation",
    }
    assert set(statuses) == expected
    assert all(s == PASS for s in statuses.values()), statuses
    assert good_report.passed
    # the numbers behind the verdicts are real measurements, not placeholders
    assert 0 < good_report.check("train_errors").details["forces_mae"] < 0.01
    assert abs(good_report.check("nve_energy").details["drift_mev_per_atom_per_ps"]) < 0.1
    assert good_report.check("force_gradient").details["abs_errors"].max() < 1e-4
    assert good_report.check("vibrations").details["max_deviation"] < 5.0


def test_report_files_and_json(good_report):
    out = good_report.out_dir
    data = json.loads((out / "validation.json").read_text())
    assert data["passed"] is True
    assert {c["key"] for c in data["checks"]} == {c.key for c in good_report.checks}
    assert data["metrics"]["test"]["n_configs"] == 20
    assert data["settings"]["nve_steps"] == 400
    for name in (
        "parity_energy.png",
        "parity_forces.png",
        "error_histograms.png",
        "per_element_forces.png",
        "nve_energy.png",
        "frequencies.png",
        "extrapolation.png",
        "train/parity_energy.png",
    ):
        assert (out / name).stat().st_size > 1000, name
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') >= 8
    assert '<img src="parity' not in html  # nothing refers to a file next to the page
    assert html.count(">PASS</td>") == 11


# -- each check fails on the potential broken for it ----------------------------------------------------------


def test_gradient_check_catches_forces_that_are_not_the_gradient(test_set):
    good = check_gradients(PairPotential(), test_set, FAST)
    bad = check_gradients(NotGradientPotential(), test_set, FAST)
    assert good.status == PASS
    assert bad.status == FAIL
    # the finite differences see the true gradient: the reported forces are 1.3x it
    d = bad.details
    np.testing.assert_allclose(d["analytic"], 1.3 * d["finite_difference"], rtol=1e-3, atol=1e-4)


def test_invariance_checks_catch_an_external_field(test_set):
    rows = {r.key: r for r in check_invariances(ExternalFieldPotential(), test_set, FAST)}
    assert rows["rotation_invariance"].status == FAIL
    assert rows["translation_invariance"].status == FAIL
    assert rows["permutation_invariance"].status == PASS  # the field treats like atoms alike
    assert rows["translation_invariance"].details["energy_errors_per_atom"].max() > 1e-3
    good = check_invariances(PairPotential(), test_set, FAST)
    assert all(r.status == PASS for r in good)


def test_permutation_check_catches_index_dependence(test_set):
    rows = {r.key: r for r in check_invariances(IndexDependentPotential(), test_set, FAST)}
    assert rows["permutation_invariance"].status == FAIL
    assert rows["rotation_invariance"].status == PASS
    assert rows["translation_invariance"].status == PASS


def test_nve_check_catches_heating(test_set):
    start = test_set[0]
    bad = {r.key: r for r in check_nve(run_nve(HeatingPotential(), start, FAST), FAST)}
    good = {r.key: r for r in check_nve(run_nve(PairPotential(), start, FAST), FAST)}
    assert good["nve_energy"].status == PASS and good["nve_stability"].status == PASS
    assert bad["nve_energy"].status == FAIL
    assert bad["nve_energy"].details["drift_mev_per_atom_per_ps"] > 10 * FAST.nve_drift_max


def test_nve_check_warns_when_forces_and_energy_disagree(test_set):
    rows = {r.key: r for r in check_nve(run_nve(NotGradientPotential(), test_set[0], FAST), FAST)}
    # forces 1.3x the gradient conserve 1.3 E_pot + E_kin, so E_pot + E_kin wobbles with E_pot
    assert rows["nve_energy"].status in (WARN, FAIL)
    assert rows["nve_energy"].details["fluctuation_ratio"] > FAST.nve_fluctuation_ratio_max


def test_nve_check_catches_a_molecule_flying_apart(test_set):
    result = run_nve(RepulsivePotential(), test_set[0], FAST)
    rows = {r.key: r for r in check_nve(result, FAST)}
    assert rows["nve_stability"].status == FAIL
    assert "stretched" in rows["nve_stability"].message
    assert result.steps_done < FAST.nve_steps  # stopped early, no time wasted


def test_nve_check_catches_nan():
    class NaNAfterAWhile(PairPotential):
        family = "test-nan"
        calls = 0

        def predict(self, images, *, stress=False):
            self.calls += 1
            p = super().predict(images)
            if self.calls > 50:
                p.energy[:] = np.nan
            return p

    result = run_nve(NaNAfterAWhile(), water_data(1, 0.02, seed=3)[0], FAST)
    rows = {r.key: r for r in check_nve(result, FAST)}
    assert rows["nve_stability"].status == FAIL
    assert "NaN" in rows["nve_stability"].message


def test_max_force_check(train, test_set):
    _, table = evaluate(PairPotential(scale=100.0), test_set)
    assert check_max_force(table, FAST).status == FAIL
    _, table = evaluate(PairPotential(), test_set)
    assert check_max_force(table, FAST).status == PASS
    assert check_max_force(table, FAST, trajectory_max_force=25.0).status == FAIL  # along the NVE run
    assert check_max_force(table, FAST, trajectory_max_force=float("inf")).status == FAIL


def test_max_force_check_allows_real_forces_above_the_bar(test_set):
    """Hot test frames carry reference forces above the bar: predicting them is right, overshooting them is not."""
    strong = FAST.model_copy(update={"max_force": 0.5})  # below the reference forces of these frames
    _, table = evaluate(PairPotential(scale=1.001), test_set)
    assert np.linalg.norm(table.forces_ref.reshape(-1, 3), axis=1).max() > 0.5
    row = check_max_force(table, strong)
    assert row.status == PASS and row.details["test_outlier_atoms"] == 0
    _, table = evaluate(PairPotential(scale=2.0), test_set)  # twice the reference: beyond 1.5x
    row = check_max_force(table, strong)
    assert row.status == FAIL and row.details["test_outlier_atoms"] > 0


def test_error_checks_thresholds():
    def metrics(e, f):
        return {
            "energy_mae_per_atom": e,
            "energy_rmse_per_atom": e,
            "forces_mae": f,
            "forces_rmse": f,
            "forces_max_error": 3 * f,
        }

    rows = check_errors(metrics(0.002, 0.05), metrics(0.003, 0.08), FAST)
    assert [r.status for r in rows] == [PASS, PASS]
    rows = check_errors(metrics(0.020, 0.05), metrics(0.020, 0.05), FAST)  # 20 meV/atom: too high
    assert rows[0].status == FAIL
    rows = check_errors(metrics(0.002, 0.05), metrics(0.005, 0.05), FAST)  # test energy 2.5x train
    assert rows[1].status == FAIL
    rows = check_errors(metrics(0.00001, 0.001), metrics(0.0001, 0.005), FAST)  # 10x, but both negligible
    assert rows[1].status == PASS
    strict = ValidationSettings(train_forces_mae_max=0.01)
    assert check_errors(metrics(0.002, 0.05), metrics(0.002, 0.05), strict)[0].status == FAIL


def test_vibrations_compare_with_the_reference_and_cache_it(test_set, tmp_path):
    start = test_set[0]
    good, data = check_vibrations(PairPotential(), start, FAST, PairLabeler(1.001), cache_dir=tmp_path)
    assert good.status == PASS
    assert data["reference_cached"] is False
    assert len(data["model"]["frequencies"]) == 3  # 3N - 6 for a bent triatomic
    assert min(data["model"]["frequencies"]) > 100
    assert (tmp_path / CACHE_FILE).exists()
    # a potential 5% too stiff: frequencies ~2.5% too high, far beyond 10 cm⁻¹
    bad, data2 = check_vibrations(PairPotential(scale=1.05), start, FAST, PairLabeler(1.001), cache_dir=tmp_path)
    assert bad.status == FAIL
    assert data2["reference_cached"] is True  # the reference was not recomputed
    assert data2["reference"]["frequencies"] == data["reference"]["frequencies"]
    ratio = np.array(data2["model"]["frequencies"]) / np.array(data2["reference"]["frequencies"])
    np.testing.assert_allclose(ratio, np.sqrt(1.05 / 1.001), rtol=2e-3)


def test_vibrations_skip_without_reference_or_for_cells(test_set):
    row, data = check_vibrations(PairPotential(), test_set[0], FAST, reference=None)
    assert row.status == SKIP and len(data["model"]["frequencies"]) == 3
    row, _ = check_vibrations(EMTPotential(), copper_data(1, 0.02, seed=0)[0], FAST, reference=None)
    assert row.status == SKIP and "periodic" in row.value


def test_extrapolation_warns_for_hotter_test_data(train, test_set):
    hot = water_data(20, 0.12, seed=5)
    for pot in (PairPotential(), NoDescriptors()):
        ok, _ = check_extrapolation(pot, train, test_set, FAST)
        warn, data = check_extrapolation(pot, train, hot, FAST)
        assert ok.status == PASS, ok.value
        assert warn.status == WARN
        assert warn.details["fraction_outside"] > 0.5
    assert "descriptor_distance" in warn.details["criteria"] or pot.descriptors is None
    row, data = check_extrapolation(PairPotential(), train, hot, FAST)
    assert row.details["counts_outside"]["descriptor_distance"] > 5
    assert data["descriptors"]["O"]["edge"] > 0


def test_extrapolation_reports_uncertainty(train, test_set):
    row, data = check_extrapolation(CommitteePairPotential(), train, test_set, FAST)
    assert row.details["max_force_std"] > 0
    assert "uncertainty" in row.details["criteria"]
    assert len(data["uncertainty"]["std"]) == len(test_set)


def test_periodic_cell_checks_pass_for_emt(tmp_path):
    train, test = copper_data(12, 0.05, seed=1), copper_data(6, 0.05, seed=2)
    settings = ValidationSettings(nve_steps=150, nve_timestep=2.0, gradient_configs=1, invariance_configs=2)
    report = validate(EMTPotential(), train, test, out_dir=tmp_path, settings=settings, progress=False)
    statuses = {c.key: c.status for c in report.checks}
    assert statuses.pop("vibrations") == SKIP
    assert statuses.pop("permutation_invariance") == PASS
    assert all(s == PASS for s in statuses.values()), {c.key: (c.status, c.value) for c in report.checks}


def test_broken_potential_report_records_failures(train, test_set, tmp_path):
    report = validate(NotGradientPotential(), train, test_set, out_dir=tmp_path, settings=FAST, progress=False)
    assert not report.passed
    assert report.check("force_gradient").status == FAIL
    assert report.check("vibrations").status == SKIP  # no reference given
    html = (tmp_path / "report.html").read_text()
    assert ">FAIL</td>" in html and "background:#fbd5d5" in html


def test_a_crashing_potential_is_a_failure_not_a_crash(train, test_set, tmp_path):
    class Crashes(PairPotential):
        family = "test-crash"

        def predict(self, images, *, stress=False):
            if len(images) == 1:  # single-configuration calls (MD, relaxations) blow up
                raise RuntimeError("kaboom")
            return super().predict(images)

    report = validate(Crashes(), train, test_set, out_dir=tmp_path, settings=FAST, progress=False)
    assert report.check("nve").status == FAIL
    assert "kaboom" in report.check("nve").message
    assert (tmp_path / "report.html").exists()


def test_bad_input_is_a_clear_error(train, test_set, tmp_path):
    with pytest.raises(InputError, match="test configurations"):
        validate(PairPotential(), train, [], out_dir=tmp_path, progress=False)
    with pytest.raises(UnsupportedSpeciesError):
        validate(PairPotential(), train, copper_data(2, 0.01, seed=0), out_dir=tmp_path, progress=False)
    unlabelled = [a.copy() for a in test_set]
    with pytest.raises(InputError, match="no reference energy"):
        validate(PairPotential(), train, unlabelled, out_dir=tmp_path, progress=False)
    with pytest.raises(InputError, match="nve_start_index"):
        s = ValidationSettings(nve_start_index=99)
        validate(PairPotential(), train, test_set, out_dir=tmp_path, settings=s, progress=False)


def test_settings_from_yaml(tmp_path):
    f = tmp_path / "v.yaml"
    f.write_text("validation:\n  nve_steps: 123\n  max_force: 5.0\n")
    s = ValidationSettings.from_file(f)
    assert s.nve_steps == 123 and s.max_force == 5.0 and s.train_energy_mae_max == 10.0
    f.write_text("nve_stepz: 3\n")
    with pytest.raises(InputError, match="nve_stepz"):
        ValidationSettings.from_file(f)


# -- the command line --------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> None:
    """``mlpkit ARGV`` in this process (so the test potentials' families are registered)."""
    from mlpkit.cli import main

    main(argv)


def test_cli_validate_from_files_and_db(train, test_set, tmp_path, capsys):
    from ase.io import write

    from mlpkit.data import Dataset

    write(tmp_path / "train.extxyz", train)
    write(tmp_path / "test.extxyz", test_set)
    PairPotential().save(tmp_path / "good")
    NotGradientPotential().save(tmp_path / "bad")
    args = ["--nve-steps", "100", "--reference", "none", "-q"]

    _cli(
        [
            "validate",
            str(tmp_path / "good"),
            "--train",
            str(tmp_path / "train.extxyz"),
            "--test",
            str(tmp_path / "test.extxyz"),
            "--out",
            str(tmp_path / "r-good"),
            *args,
        ]
    )
    printed = capsys.readouterr().out
    assert "PASS" in printed and "FAIL" not in printed.split("Validation of")[1].split("PASS,")[0]
    assert json.loads((tmp_path / "r-good" / "validation.json").read_text())["passed"] is True

    # a FAIL is a result, not an error (exit 0), unless --strict
    bad = [
        "validate",
        str(tmp_path / "bad"),
        "--train",
        str(tmp_path / "train.extxyz"),
        "--test",
        str(tmp_path / "test.extxyz"),
        "--out",
        str(tmp_path / "r-bad"),
        *args,
    ]
    _cli(bad)
    assert "FAIL" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        _cli([*bad, "--strict"])
    assert exc.value.code == 1

    # the same data from a dataset's splits
    ds = Dataset(tmp_path / "water.db")
    ds.add(train, method="test:pair*1.001", source="t", labelled=True, split="train")
    ds.add(test_set, method="test:pair*1.001", source="t", labelled=True, split="test")
    _cli(
        ["validate", str(tmp_path / "good"), "--db", str(tmp_path / "water.db"), "--out", str(tmp_path / "r-db"), *args]
    )
    data = json.loads((tmp_path / "r-db" / "validation.json").read_text())
    assert data["info"]["n_train"] == 60 and data["info"]["n_test"] == 20

    # user errors: one red line, exit code 2
    for argv in (
        ["validate", str(tmp_path / "nope")],
        ["validate", str(tmp_path / "good")],
        ["validate", str(tmp_path / "good"), "--db", str(tmp_path / "water.db"), "--nve-steps", "-5"],
    ):
        with pytest.raises(SystemExit) as exc:
            _cli(argv)
        assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_reference_from_method():
    from mlpkit.labelers.emt import EMTLabeler
    from mlpkit.validation import reference_from_method

    assert isinstance(reference_from_method("emt"), EMTLabeler)
    assert reference_from_method("tblite:GFN2-xTB").method == "tblite:GFN2-xTB"
    assert reference_from_method("something:else") is None
    pytest.importorskip("pyscf")
    # the shared reference data (../shared/data, made outside mlpkit) record "pyscf-2.14:PBE/def2-svp"
    assert reference_from_method("pyscf-2.14:PBE/def2-svp").method.lower() == "pyscf:pbe/def2-svp"


def test_stability_watch_for_cells():
    from ase.build import bulk

    from mlpkit.validation.nve import _StabilityWatch

    cell = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    cell.center(vacuum=6.0, axis=2)  # a slab: room for an atom to leave
    watch = _StabilityWatch(cell, FAST)
    assert watch.problems(cell) == []
    gone = cell.copy()
    gone.positions[0, 2] = float(cell.positions[:, 2].max()) + 5.0  # into the vacuum, 5 Å off the surface
    assert any("no neighbour" in p for p in watch.problems(gone))
    squashed = cell.copy()
    squashed.positions[1] = squashed.positions[0] + [0.3, 0, 0]
    assert any("0.30 Å apart" in p for p in watch.problems(squashed))


def test_nve_drift_needs_to_stand_out_of_the_wobble():
    from mlpkit.validation.nve import NVEResult

    t = np.arange(0, 50.0, 0.5)  # 0.05 ps
    ekin = 0.1 + 0.02 * np.sin(t / 3.0)
    wobble = 0.003 * np.sin(2 * np.pi * t / 40.0)  # 1 meV/atom wobble (3 atoms): a big fitted slope over 50 fs

    def rows(etot):
        res = NVEResult(
            n_atoms=3,
            timestep=0.5,
            steps_requested=100,
            time_fs=t,
            epot=etot - ekin,
            ekin=ekin,
            temperature=300 + 0 * t,
            max_force=1 + 0 * t,
        )
        return {r.key: r for r in check_nve(res, FAST)}["nve_energy"]

    short = rows(-10 + wobble)
    assert abs(short.details["drift_mev_per_atom_per_ps"]) > FAST.nve_drift_max
    assert short.status == WARN and not short.details["drift_resolved"]
    ramp = rows(-10 + wobble + 0.3 * t / 1000 * 3)  # +300 meV/atom/ps
    assert ramp.status == FAIL and ramp.details["drift_resolved"]
