"""CLI conventions a newcomer expects: ``python -m mlpkit``, ``--version``, plain flags, comma-separated lists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import mlpkit
from mlpkit.cli import _register, app, main
from mlpkit.data import Dataset

SRC = Path(__file__).resolve().parents[1] / "src"


def run(capsys, *args) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def test_python_dash_m_and_version():
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run([sys.executable, "-m", "mlpkit", "--version"], env=env, capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == f"mlpkit {mlpkit.__version__}", res.stderr
    res = subprocess.run([sys.executable, "-m", "mlpkit"], env=env, capture_output=True, text=True)
    assert "Usage: mlpkit" in res.stdout + res.stderr  # the help, under the command's own name


def _command_paths(command, prefix=()):
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*prefix, name))


def test_no_help_shows_a_value_for_a_flag(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    _register()
    paths = list(_command_paths(typer.main.get_command(app)))
    assert ("label",) in paths and ("data", "split") in paths
    for path in paths:
        code, out, _ = run(capsys, *path, "--help")
        assert code == 0 and "--help" in out, path
        assert "<bool>" not in out, f"mlpkit {' '.join(path)} --help shows <bool> on a flag"
    code, out, _ = run(capsys, "label", "--help")
    assert "--retry-failed" in out and "KEY=VALUE" in out and "list[str]" not in out
    code, out, _ = run(capsys, "data", "split", "--help")
    assert "TRAIN,VALID,TEST" in out and "float,float,float" not in out
    code, out, _ = run(capsys, "validate", "--help")
    assert "reports/<model name>" in out  # was eaten as rich markup


def test_version_in_process(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"mlpkit {mlpkit.__version__}"


@pytest.fixture
def store(tmp_path, water_frames):
    db = tmp_path / "d.db"
    Dataset(db).add(water_frames[:20], method="pyscf:PBE/def2-SVP", source="md", labelled=True)
    return db


def test_split_fractions_as_help_shows_them(capsys, store):
    code, _, err = run(capsys, "data", "split", "--db", store, "--fractions", "0.6,0.2,0.2")
    assert code == 0, err
    assert [Dataset(store).count(split=s) for s in ("train", "valid", "test")] == [12, 4, 4]


@pytest.mark.parametrize(
    ("value", "message"),
    [("0.6,0.4", "--fractions takes 3 comma-separated numbers"), ("a,b,c", "comma-separated numbers like")],
)
def test_bad_fractions_are_one_message_and_exit_2(capsys, store, value, message):
    code, _, err = run(capsys, "data", "split", "--db", store, "--fractions", value)
    assert code == 2 and message in err and "Traceback" not in err
    assert Dataset(store).count(split="train") == 0  # nothing assigned
