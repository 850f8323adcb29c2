"""A reference code that is installed but not set up: the label job says so and exits 1; a probe finds it first."""

from __future__ import annotations

import json

import pytest
from ase import Atoms
from ase.io import write

from helpers_labelling import BROKEN_REASON, BrokenCode
from mlpkit.cli import main
from mlpkit.data import Dataset
from mlpkit.labelers.probe import is_external, probe_method, tiny_molecule


def run(capsys, *args) -> tuple[int, str, str]:
    """``mlpkit ARGS`` in-process: (exit code, stdout, stderr with rich's line wrapping undone)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def _configs(path, n=3):
    frames = []
    for i in range(n):
        atoms = Atoms("OH2", positions=[[0, 0, 0.12], [0, 0.76 + 0.02 * i, -0.47], [0, -0.76, -0.47]])
        atoms.center(vacuum=4.0)
        frames.append(atoms)
    write(path, frames)
    return path


def _label(capsys, tmp_path, *extra):
    configs = _configs(tmp_path / "c.extxyz")
    db = tmp_path / "d.db"
    args = ["label", "--input", configs, "--db", db, "--method", "ase", "--calculator", "helpers_labelling:BrokenCode"]
    return db, run(capsys, *args, "--level-of-theory", "broken", "--workers", 0, *extra)


def test_a_job_in_which_every_calculation_failed_exits_1_with_the_full_reason(tmp_path, capsys):
    BrokenCode.calls = 0
    db, (code, out, err) = _label(capsys, tmp_path)
    assert code == 1
    assert "all 3 calculation(s) with ase:broken failed" in err
    assert BROKEN_REASON in err  # in full: the URL and what follows it
    assert "Traceback" not in err
    assert Dataset(db).count(status="failed") == 3  # the failures are recorded all the same
    # the summary, tables and JSON, keeps the whole first line of the reason
    code, out, err = run(capsys, "data", "summary", "--db", db, "--json")
    assert code == 0
    errors = json.loads(out)["errors"]
    assert list(errors.values()) == [3] and BROKEN_REASON in next(iter(errors))


def test_a_job_with_some_labels_exits_0(tmp_path, capsys):
    BrokenCode.calls = 0
    db, (code, out, err) = _label(capsys, tmp_path, "--param", "works_every=2")
    assert code == 0, err
    assert "1 labelled" in out and "2 failed" in out and "all" not in err
    assert Dataset(db).count(status="labelled") == 1


def test_probe_reports_a_code_that_cannot_run():
    BrokenCode.calls = 0
    problem = probe_method({"method": "ase", "calculator": "helpers_labelling:BrokenCode", "level_of_theory": "x"})
    assert problem == f"ase:x cannot run: RuntimeError: {BROKEN_REASON}"
    missing = probe_method({"method": "ase", "calculator": "no_such_code.calculator:Calc"})
    assert missing.startswith("ase: cannot import no_such_code.calculator") and "No module named" in missing
    assert probe_method({"method": "ase", "calculator": "ase.calculators.emt:EMT"}) is None
    assert probe_method("emt") is None


def test_probe_runs_file_based_codes_in_a_scratch_directory(tmp_path, monkeypatch):
    from ase.config import cfg

    if cfg.parser.has_section("espresso"):
        pytest.skip("Quantum ESPRESSO is configured for ASE here; this test needs an unconfigured one")
    monkeypatch.chdir(tmp_path)
    # ASE's Espresso writes its input files before it looks for the binary: here, nothing is set up
    problem = probe_method({"method": "ase", "calculator": "ase.calculators.espresso:Espresso"})
    assert problem is not None and problem.startswith("ase:Espresso cannot run:")
    assert list(tmp_path.iterdir()) == []  # nothing left in the user's directory


def test_which_methods_are_external():
    assert is_external("ase") and is_external({"method": "gpaw"})
    assert not is_external("pyscf") and not is_external("gfn2")
    h2 = tiny_molecule()
    assert h2.get_distance(0, 1) == pytest.approx(0.74) and not h2.pbc.any()
    assert tiny_molecule(periodic=True).pbc.all()
