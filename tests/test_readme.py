"""The README's hand-run section works as written, in an empty directory (real PySCF DFT, a few dozen labels)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def hand_run_commands() -> list[str]:
    text = README.read_text()
    section = text[text.index("## The stages by hand") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README has no bash block under 'The stages by hand'"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_the_block_is_what_the_test_runs():
    commands = hand_run_commands()
    assert commands[0].startswith("mlpkit sample") and any(c.startswith("mlpkit train") for c in commands)
    assert all(c.startswith("mlpkit ") for c in commands)


@pytest.mark.timeout(600)
def test_readme_hand_run_section_verbatim(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    mlpkit = [sys.executable, "-m", "mlpkit.cli"]
    for command in hand_run_commands():
        args = shlex.split(command)[1:]
        proc = subprocess.run([*mlpkit, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"`{command}` failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert (tmp_path / "models" / "water-bpnn" / "model.json").exists()
    assert (tmp_path / "reports" / "water-bpnn" / "metrics.json").exists()
    assert (tmp_path / "test.extxyz").stat().st_size > 0
