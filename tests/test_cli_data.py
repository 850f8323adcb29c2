"""The `sample`, `label` and `data` commands as a user runs them, including every bad-input case."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from ase import Atoms
from ase.io import read, write

from mlpkit.cli import main
from mlpkit.data import Dataset


def run(capsys, *args) -> tuple[int, str, str]:
    """Run ``mlpkit ARGS`` in-process: (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())  # rich wraps long lines; compare as one line


def digest(path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def test_readme_workflow_with_real_dft(tmp_path, capsys, monkeypatch):
    """sample md -> label (PySCF PBE/def2-SVP) -> summary -> export, at toy size."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(
        capsys,
        "sample",
        "md",
        "--structure",
        "H2O",
        "--temperature",
        500,
        "--thermostat",
        "nve",
        "--steps",
        20,
        "--every",
        10,
        "--calc",
        "gfn2",
        "--out",
        "configs.extxyz",
    )
    assert code == 0, err
    configs = read(tmp_path / "configs.extxyz", ":")
    assert len(configs) == 2 and configs[0].info["source"] == "md-500K-nve"
    code, out, err = run(
        capsys,
        "label",
        "--input",
        "configs.extxyz",
        "--db",
        "water.db",
        "--method",
        "pyscf",
        "--xc",
        "PBE",
        "--basis",
        "def2-SVP",
        "--workers",
        0,
        "--threads",
        1,
    )
    assert code == 0, err
    assert "2 labelled" in out and "pyscf:PBE/def2-SVP" in out
    code, out, err = run(capsys, "data", "summary", "--db", "water.db")
    assert code == 0 and "md-500K-nve" in out
    code, out, err = run(capsys, "data", "summary", "--db", "water.db", "--json")
    summary = json.loads(out)
    assert summary["status"] == {"pending": 0, "labelled": 2, "failed": 0}
    code, out, err = run(
        capsys, "data", "export", "--db", "water.db", "--status", "labelled", "--out", "labelled.extxyz"
    )
    assert code == 0, err
    labelled = read(tmp_path / "labelled.extxyz", ":")
    assert [a.info["method"] for a in labelled] == ["pyscf:PBE/def2-SVP"] * 2
    # the stored labels are the method's own numbers
    from mlpkit.labelers import make_labeler

    direct = make_labeler("pyscf", threads=1).label(labelled[0])
    assert labelled[0].get_potential_energy() == pytest.approx(direct.energy, abs=1e-6)
    assert np.allclose(labelled[0].get_forces(), direct.forces, atol=1e-5)
    # running the same label command again computes nothing
    code, out, err = run(
        capsys, "label", "--input", "configs.extxyz", "--db", "water.db", "--method", "pyscf", "--workers", 0
    )
    assert code == 0 and "0 labelled" in out and "2 duplicate(s) skipped" in out


def test_forced_scf_failure_is_recorded_and_can_be_retried(tmp_path, capsys, water_frames):
    configs = tmp_path / "c.extxyz"
    write(configs, water_frames[:2])
    db = tmp_path / "w.db"
    code, out, err = run(
        capsys,
        "label",
        "--input",
        configs,
        "--db",
        db,
        "--method",
        "pyscf",
        "--basis",
        "sto-3g",
        "--param",
        "max_cycle=1",
        "--workers",
        0,
        "--threads",
        1,
    )
    # a failed label is data, not a crash: recorded, the run goes on; but a job in which every calculation
    # failed is a set-up problem and exits 1 with the first reason
    assert code == 1, err
    assert "2 failed" in out and "SCF did not converge" in out
    assert "all 2 calculation(s) with pyscf:PBE/STO-3G failed" in err and "Newton" in err
    rows = list(Dataset(db).rows())
    assert [r.status for r in rows] == ["failed", "failed"]
    assert all("Newton" in r.error and r.get("energy") is None for r in rows)
    # a plain rerun leaves failed rows alone; --retry-failed with working settings labels them
    code, out, err = run(capsys, "label", "--db", db, "--method", "pyscf", "--basis", "sto-3g", "--workers", 0)
    assert code == 0 and "0 labelled" in out
    code, out, err = run(
        capsys,
        "label",
        "--db",
        db,
        "--method",
        "pyscf",
        "--basis",
        "sto-3g",
        "--workers",
        0,
        "--threads",
        1,
        "--retry-failed",
    )
    assert code == 0, err
    assert Dataset(db).count(status="labelled") == 2


def test_rattle_and_normal_modes(tmp_path, capsys):
    start = tmp_path / "start.xyz"
    write(start, Atoms("OHH", positions=[[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]]))
    code, out, err = run(
        capsys,
        "sample",
        "rattle",
        "--structure",
        start,
        "--n",
        7,
        "--stdev",
        0.02,
        "--seed",
        1,
        "--out",
        tmp_path / "r.extxyz",
    )
    assert code == 0, err
    assert len(read(tmp_path / "r.extxyz", ":")) == 7
    code, out, err = run(
        capsys,
        "sample",
        "normal-modes",
        "--structure",
        "H2O",
        "--n",
        5,
        "--temperature",
        300,
        "--calc",
        "gfn2",
        "--relax",
        "--out",
        tmp_path / "nm.extxyz",
    )
    assert code == 0, err
    assert "harmonic wavenumbers" in out and len(read(tmp_path / "nm.extxyz", ":")) == 5


def test_import_split_export_round_trip(tmp_path, capsys, shared_data):
    db = tmp_path / "ref.db"
    src = shared_data / "h2o-pbe-svp-500K-nve.extxyz"
    code, out, err = run(capsys, "data", "import", "--db", db, "--input", src)
    assert code == 0 and "imported 300" in out, err
    code, out, err = run(capsys, "data", "import", "--db", db, "--input", src)
    assert "imported 0" in out and "300 duplicate(s)" in out
    code, out, err = run(capsys, "data", "split", "--db", db, "--fractions", "0.8,0.1,0.1", "--seed", 0)
    assert code == 0, err
    assert Dataset(db).count(split="test") == 30
    code, out, err = run(capsys, "data", "export", "--db", db, "--out", tmp_path / "all.extxyz")
    assert code == 0, err
    original, back = read(src, ":"), read(tmp_path / "all.extxyz", ":")
    for a, b in zip(original, back, strict=True):
        assert a.get_potential_energy() == b.get_potential_energy()
        assert np.array_equal(a.get_forces(), b.get_forces())
    code, out, err = run(capsys, "data", "export", "--db", db, "--split", "test", "--out", tmp_path / "t.extxyz")
    assert len(read(tmp_path / "t.extxyz", ":")) == 30
    # a second level of theory in the same store: exports must name one
    emt = tmp_path / "emt.extxyz"
    write(emt, read(src, ":3"))
    code, out, err = run(capsys, "data", "import", "--db", db, "--input", emt, "--method", "emt-fake")
    assert code == 0
    code, out, err = run(capsys, "data", "export", "--db", db, "--out", tmp_path / "mixed.extxyz")
    assert code == 2 and "methods" in err and not (tmp_path / "mixed.extxyz").exists()
    code, out, err = run(
        capsys, "data", "export", "--db", db, "--out", tmp_path / "mixed.extxyz", "--allow-mixed-methods"
    )
    assert code == 0 and len(read(tmp_path / "mixed.extxyz", ":")) == 303


@pytest.fixture
def store(tmp_path, capsys, water_frames):
    """A store with 3 EMT labels, and the input file they came from."""
    configs = tmp_path / "ok.extxyz"
    write(configs, water_frames[:3])
    db = tmp_path / "s.db"
    code, _, err = run(capsys, "label", "--input", configs, "--db", db, "--method", "emt", "--workers", 0)
    assert code == 0, err
    return db


def _bad_files(tmp_path, shared_data):
    text = (shared_data / "h2o-pbe-svp-500K-nve.extxyz").read_text()
    truncated = tmp_path / "truncated.extxyz"
    truncated.write_text(text[:5000])
    garbled = tmp_path / "garbled.extxyz"
    garbled.write_bytes(bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8)))
    overlap = tmp_path / "overlap.extxyz"
    write(
        overlap,
        [
            Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [0, 0.96, 0]]),
            Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [0.97, 0.05, 0]]),
        ],
    )
    og = tmp_path / "og.extxyz"
    write(og, Atoms("OgH", positions=[[0, 0, 0], [0, 0, 2.0]]))
    si = tmp_path / "si.extxyz"
    write(si, Atoms("Si2", positions=[[0, 0, 0], [0, 0, 2.3]]))
    return {"truncated": truncated, "garbled": garbled, "overlap": overlap, "og": og, "si": si}


@pytest.mark.parametrize(
    ("case", "method", "expected"),
    [
        ("truncated", "emt", "truncated.extxyz"),
        ("garbled", "emt", "garbled.extxyz"),
        ("overlap", "emt", "on top of each other"),
        ("og", "pyscf", "basis def2-SVP has no functions for element(s) Og"),
        ("si", "emt", "cannot handle element(s) Si"),
        ("missing", "emt", "does not exist"),
        ("unknown-method", "vasp2000", "unknown method"),
    ],
)
def test_bad_input_one_message_exit_2_store_unchanged(tmp_path, capsys, shared_data, store, case, method, expected):
    files = _bad_files(tmp_path, shared_data)
    path = files.get(case, tmp_path / "ok.extxyz" if case == "unknown-method" else tmp_path / "nothere.extxyz")
    before = digest(store)
    code, _out, err = run(capsys, "label", "--input", path, "--db", store, "--method", method, "--workers", 0)
    assert code == 2
    message = err
    assert message.startswith("error:") and message.count("error:") == 1 and "Traceback" not in err
    assert expected in message
    assert digest(store) == before


def test_database_in_a_missing_directory(tmp_path, capsys, water_frames):
    configs = tmp_path / "ok.extxyz"
    write(configs, water_frames[:2])
    db = tmp_path / "no" / "such" / "dir" / "w.db"
    code, _out, err = run(capsys, "label", "--input", configs, "--db", db, "--method", "emt", "--workers", 0)
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "no").exists()
    for args in (
        ("data", "summary", "--db", tmp_path / "absent.db"),
        ("data", "export", "--db", tmp_path / "absent.db", "--out", tmp_path / "x.extxyz"),
        ("data", "split", "--db", tmp_path / "absent.db"),
    ):
        code, _out, err = run(capsys, *args)
        assert code == 2 and "does not exist" in err
    assert not (tmp_path / "absent.db").exists()


def test_import_refuses_unlabelled_files_without_writing(tmp_path, capsys, water_frames, store):
    mixed = tmp_path / "mixed.extxyz"
    frames = water_frames[10:13]
    frames[2].calc = None
    write(mixed, frames)
    before = digest(store)
    code, _out, err = run(capsys, "data", "import", "--db", store, "--input", mixed)
    assert code == 2 and "frame 2 has no energy and forces" in err
    assert digest(store) == before


def test_sample_into_a_missing_directory_is_refused_before_any_work(tmp_path, capsys):
    for kind in ("rattle", "md", "normal-modes"):
        out = tmp_path / "no" / "such" / f"{kind}.extxyz"
        calc = () if kind == "rattle" else ("--calc", "emt")
        code, _out, err = run(capsys, "sample", kind, "--structure", "H2O", *calc, "--out", out)
        assert code == 2 and "does not exist" in err, (kind, err)
    assert not (tmp_path / "no").exists()
