"""Ctrl-C anywhere in the CLI: one line, exit code 130, no traceback, finished work kept."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ase import Atoms
from ase.io import write

import mlpkit.execution
import mlpkit.sampling
from mlpkit.cli import main
from mlpkit.data import Dataset
from mlpkit.errors import MlpkitError

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def _configs(path: Path, n: int) -> Path:
    frames = []
    for i in range(n):
        atoms = Atoms("OH2", positions=[[0, 0, 0.12], [0, 0.76 + 0.01 * i, -0.47], [0, -0.76, -0.47]])
        atoms.center(vacuum=4.0)
        frames.append(atoms)
    write(path, frames)
    return path


def _labelled_so_far(db: Path) -> int:
    """Labelled rows, read while another process writes; 0 while that process is still creating the tables (ASE's
    SQLite back end creates them on first use, and a reader racing it fails on a half-made schema)."""
    if not db.exists():
        return 0
    try:
        return Dataset(db).count(status="labelled")
    except (sqlite3.Error, MlpkitError):
        return 0


def _label_run_with_labels(tmp_path: Path, n: int, at_least: int = 3) -> tuple[subprocess.Popen, Path]:
    """`mlpkit label` of ``n`` slow EMT configurations on 2 Dask workers, in a new session (like a shell's
    foreground job), returned once ``at_least`` labels are in its store."""
    configs, db = _configs(tmp_path / "c.extxyz", n), tmp_path / "d.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)]), "COLUMNS": "200"}
    command = [sys.executable, "-m", "mlpkit", "label", "--input", str(configs), "--db", str(db)]
    command += ["--method", "ase", "--calculator", "helpers_labelling:LoggingEMT", "--level-of-theory", "emt"]
    command += ["--param", f"log={tmp_path / 'calc.log'}", "--param", "delay=0.5", "--workers", "2"]
    proc = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if _labelled_so_far(db) >= at_least:
            return proc, db
        if proc.poll() is not None:
            pytest.fail(f"mlpkit label ended early: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    pytest.fail("no labels written within 120 s")


def test_ctrl_c_during_a_dask_label_run(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group: the main process and the Dask workers."""
    n = 16
    proc, db = _label_run_with_labels(tmp_path, n)
    try:
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = err.decode()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "ERROR" not in err, err[-3000:]
    saved = Dataset(db).count(status="labelled")
    assert 3 <= saved < n, "the interrupt should land mid-run"
    assert f"interrupted; {saved} label(s) saved to {db}; run the same command to continue" in err
    assert Dataset(db).count(status="pending") == n - saved  # nothing lost, nothing marked failed
    time.sleep(1.0)  # the workers were closed with the main process: none is left behind writing
    assert Dataset(db).count(status="labelled") == saved


def test_ctrl_c_in_process_gives_one_line_and_130(tmp_path, capsys, monkeypatch):
    configs, db = _configs(tmp_path / "c.extxyz", 2), tmp_path / "d.db"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mlpkit.execution, "label_configurations", interrupted)
    with pytest.raises(SystemExit) as exc:
        main(["label", "--input", str(configs), "--db", str(db), "--method", "emt", "--workers", "0"])
    assert exc.value.code == 130
    err = capsys.readouterr().err
    assert err.strip() == f"interrupted; 0 label(s) saved to {db}; run the same command to continue"

    # a command with nothing to count says only how to go on
    monkeypatch.setattr(mlpkit.sampling, "rattle", interrupted)
    with pytest.raises(SystemExit) as exc:
        main(["sample", "rattle", "--structure", "H2O", "--out", str(tmp_path / "r.extxyz")])
    assert exc.value.code == 130
    assert capsys.readouterr().err.strip() == "interrupted; run the same command to continue"


def _running_in_group(pgid: int) -> list[int]:
    """Processes of a process group that still run (zombies have ended: a container's PID 1 may never reap them)."""
    running = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
            if int(fields[2]) == pgid and fields[0] != "Z":
                running.append(int(stat.parent.name))
    return running


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="Linux: reads /proc")
def test_sigterm_to_the_main_process_closes_its_workers_and_keeps_the_labels(tmp_path):
    """`kill PID`, a container stop, or a batch system's time limit: only the main process gets SIGTERM.

    Python's default would end it on the spot and leave the Dask workers running; handled like Ctrl-C instead.
    """
    n = 16
    proc, db = _label_run_with_labels(tmp_path, n)
    try:
        proc.terminate()  # SIGTERM to the main process only
        _, err = proc.communicate(timeout=120)
        err = err.decode()
        assert proc.returncode == 143, err[-3000:]
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
        saved = Dataset(db).count(status="labelled")
        assert f"terminated (SIGTERM); {saved} label(s) saved to {db}; run the same command to continue" in err
        assert Dataset(db).count(status="pending") == n - saved
        time.sleep(1.0)
        assert _running_in_group(proc.pid) == [], "the workers outlived the main process"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
