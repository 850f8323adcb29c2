"""``mlpkit screen``: a tiny screen of C2H6O isomers (CHGNet as the model, GFN2-xTB as the reference), killed in the
middle of its reference labels and resumed without repeating a calculation; the closed loop; clear input errors."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ase.build import molecule
from ase.io import write

from mlpkit.cli import main
from mlpkit.data import Dataset
from mlpkit.errors import InputError
from mlpkit.labelers import make_labeler
from mlpkit.workflows.screen import Score, Screen, ScreenSettings
from mlpkit.workflows.screen.candidates import rank

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def _candidates(directory: Path) -> Path:
    """8 candidates: ethanol and dimethyl ether, each as built and rattled three times (one file each)."""
    directory.mkdir()
    for name in ("CH3CH2OH", "CH3OCH3"):
        atoms = molecule(name)
        atoms.center(vacuum=4.0)
        write(directory / f"{name}.xyz", atoms)
        for i in range(3):
            rattled = atoms.copy()
            rattled.rattle(0.04, seed=i + 1)
            write(directory / f"{name}-r{i}.extxyz", rattled)
    (directory / "notes.txt").write_text("not a structure file\n")
    return directory


def _logged(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _labelled(db: Path) -> int:
    """Labels in the store another process is writing; 0 while ASE is still creating it (its tables exist a moment
    before their version row: reading then raises inside ASE)."""
    if not db.exists():
        return 0
    try:
        return Dataset(db).count(method="ase:logged-GFN2", status="labelled")
    except (TypeError, sqlite3.OperationalError):
        return 0


def test_screen_killed_while_labelling_resumes_without_repeating(tmp_path):
    cands, db, out, log = _candidates(tmp_path / "cands"), tmp_path / "s.db", tmp_path / "rep", tmp_path / "calc.log"
    args = ["screen", str(cands), "--model", "chgnet", "--top", "5", "--db", str(db), "--out", str(out)]
    args += ["--label", "ase", "--calculator", "al_helpers:LoggingGFN2", "--level-of-theory", "logged-GFN2"]
    args += ["--param", f"log={log}", "--param", "delay=0.6", "--workers", "0"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)]), "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "mlpkit", *args], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.time() + 90
        # killed once two labels are in the store, during the sleep before the third calculation
        while _labelled(db) < 2:
            if proc.poll() is not None:
                pytest.fail(f"mlpkit screen ended early: {proc.stderr.read().decode()[-2000:]}")
            if time.time() > deadline:
                pytest.fail("no reference calculation finished within 90 s")
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    done_before = len(_logged(log))
    assert 2 <= done_before < 5 and Dataset(db).count(method="ase:logged-GFN2", status="labelled") == done_before
    state = json.loads((out / "state.json").read_text())
    assert "model-0" in state["steps"] and "label-0" not in state["steps"]

    main(args)  # the same command again: continues

    calcs = _logged(log)
    assert len(calcs) == 5 and len(set(calcs)) == 5, "every reference calculation exactly once"
    store = Dataset(db)
    assert store.count(method="ase:logged-GFN2", status="labelled") == 5
    assert store.count(method="model:chgnet", source="screen-candidate") == 8  # one model row per candidate
    data = json.loads((out / "screen.json").read_text())
    assert data["candidates"] == 8 and data["labelled"] == 5 and data["labels_saved"] == 3
    assert any("notes.txt" in note for note in data["skipped"])
    table = data["table"]
    assert [r["rank_model"] for r in table] == list(range(1, 9))
    scores = [r["model_score"] for r in table]
    assert scores == sorted(scores)
    assert [r["round"] for r in table] == [0] * 5 + [None] * 3  # the top 5 by the model were labelled
    assert sorted(r["rank_reference"] for r in table[:5]) == [1, 2, 3, 4, 5]
    assert data["spearman"] is not None and -1 <= data["spearman"] <= 1
    assert data["top_k_recall"] == 5
    # the reference energy per atom is GFN2-xTB's on the model's structure (a few hundred eV per molecule)
    assert all(r["reference_energy_per_atom"] < -30 for r in table[:5])
    assert "Spearman" in (out / "report.html").read_text()

    # model results are cached per candidate in the store: without the state file nothing is computed again
    (out / "state.json").unlink()
    said: list[str] = []
    labeler = make_labeler("ase", calculator="al_helpers:LoggingGFN2", level_of_theory="logged-GFN2",
                           parameters={"log": str(log)})  # fmt: skip
    Screen(cands, labeler, db, out, ScreenSettings(top=5, workers=0), say=said.append, progress=False).run()
    assert any("8 cached, 0 to compute" in m for m in said), said
    assert len(_logged(log)) == 5


def test_closed_loop_fine_tunes_and_reranks_on_dask(tmp_path):
    cands, db, out = _candidates(tmp_path / "cands"), tmp_path / "s.db", tmp_path / "rep"
    settings = ScreenSettings(top=2, rounds=2, fit={"epochs": 2, "batch_size": 2}, workers=1, relax=True,
                              fmax=0.2, max_steps=20, score="formation", references="H=-3,C=-8,O=-5")  # fmt: skip
    data = Screen(cands, make_labeler("gfn2"), db, out, settings, progress=False).run()
    assert (out / "models" / "round-1" / "model.json").exists()
    picked = [r for r in data["table"] if r["round"] is not None]
    assert sorted(r["round"] for r in picked) == [0, 0, 1, 1] and data["labelled"] == 4
    assert len(data["best_reference_score_by_round"]) == 2
    assert data["best_reference_score_by_round"][1] <= data["best_reference_score_by_round"][0]
    assert data["spearman_last_model"] is not None
    store = Dataset(db)
    fine_tuned = [m for m in store.methods() if "@round1-" in m]
    assert len(fine_tuned) == 1 and store.count(method=fine_tuned[0]) == 8
    assert all(r["relax_steps"] is not None for r in data["table"])


def test_bad_input_gives_clear_errors(tmp_path, capsys):
    cands = _candidates(tmp_path / "cands")
    gfn2 = make_labeler("gfn2")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (empty, {}, "holds no structure file"),
        (tmp_path / "missing", {}, "do not exist"),
        (cands, {"score": "energy_per_atm"}, "unknown quantity 'energy_per_atm'"),
        (cands, {"score": "formation"}, "needs elemental reference energies"),
        (cands, {"score": "__import__('os').getcwd()"}, "only numbers, quantity names"),
        (cands, {"score": "energy_per_atom ** 2"}, "only numbers, quantity names"),
        (cands, {"top": 9}, "only 8 candidates"),
        (cands, {"top": 3, "rounds": 3}, "asks for 9 reference labels"),
        (cands, {"top": 0}, "at least 1"),
        (cands, {"score": "formation", "references": "H=-3,C=-8"}, "no energy for O"),
    ]
    for path, kwargs, message in cases:
        with pytest.raises(InputError, match=message.replace("(", r"\(")):
            Screen(path, gfn2, tmp_path / "s.db", tmp_path / "rep", ScreenSettings(**{"top": 3, **kwargs}))
    with pytest.raises(SystemExit) as exc:
        main(["screen", str(cands), "--top", "20", "--label", "gfn2", "--db", str(tmp_path / "s.db")])
    assert exc.value.code == 2
    assert "only 8 candidates" in capsys.readouterr().err


def test_score_expressions():
    q = {"energy_per_atom": -2.0, "n_atoms": 9.0, "gap": 0.5}
    assert Score("energy_per_atom")(q) == -2.0
    assert Score("-(energy_per_atom - 1) * 2 / n_atoms + gap")(q) == pytest.approx(6 / 9 + 0.5)
    assert math.isnan(Score("gap / (n_atoms - 9)")(q))
    assert Score("formation").names == ["formation_energy_per_atom"]
    assert rank({"a": 1.0, "b": math.nan, "c": -1.0}) == ["c", "a", "b"]


def test_distinct_passes_over_near_duplicates(tmp_path):
    """Relaxed copies of one minimum have nearly one score: ``distinct`` picks other structures first."""
    cands = _candidates(tmp_path / "cands")
    sc = Screen(cands, make_labeler("gfn2"), tmp_path / "s.db", tmp_path / "rep", ScreenSettings(top=3, distinct=0.01))
    hashes = [c.hash for c in sc.candidates]
    fake = dict(zip(hashes, [-5.0, -5.001, -5.002, -4.9, -4.8, -4.7, -4.6, -4.5], strict=True))
    sc.model_energies = lambda r: fake
    sc.scores = lambda energies: dict(energies)
    picked = sc.select(0)
    assert picked["selected"] == [hashes[2], hashes[3], hashes[4]] and picked["near_duplicates_passed"] == 2
    sc.settings.top = 8  # fewer distinct ones than the budget: the near-duplicates fill it
    assert sc.select(0)["selected"][-2:] == [hashes[1], hashes[0]]
    sc.settings.distinct = 0.0
    assert sc.select(0)["selected"][:3] == [hashes[2], hashes[1], hashes[0]]
