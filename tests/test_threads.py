"""mlpkit's thread layout: usable cores from affinity and cgroup quota, the override order, CLI start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlpkit import threads
from mlpkit.threads import (
    PASSIVE_WAITING,
    THREAD_VARIABLES,
    cgroup_cpu_limit,
    configure_threads,
    thread_count,
    usable_cores,
    worker_environment,
)

SRC = Path(__file__).resolve().parents[1] / "src"


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


# -- cgroup quota -------------------------------------------------------------------------------------------


def test_cgroup_v2_quota_of_the_group_and_its_parents(tmp_path):
    _write(tmp_path, "cpu.max", "max 100000")  # the root: no limit
    _write(tmp_path, "user/job/cpu.max", "150000 100000")  # 1.5 cores
    assert cgroup_cpu_limit(tmp_path, "0::/user/job\n") == pytest.approx(1.5)
    # a parent's tighter quota limits the child
    _write(tmp_path, "user/cpu.max", "50000 100000")
    assert cgroup_cpu_limit(tmp_path, "0::/user/job\n") == pytest.approx(0.5)
    # no quota anywhere
    _write(tmp_path, "user/cpu.max", "max 100000")
    _write(tmp_path, "user/job/cpu.max", "max 100000")
    assert cgroup_cpu_limit(tmp_path, "0::/user/job\n") is None


def test_cgroup_v1_cfs_quota(tmp_path):
    proc = "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n0::/\n"
    _write(tmp_path, "cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000")
    _write(tmp_path, "cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000")
    assert cgroup_cpu_limit(tmp_path, proc) == pytest.approx(3.0)
    _write(tmp_path, "cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1")  # no quota
    assert cgroup_cpu_limit(tmp_path, proc) is None


def test_garbage_or_missing_cgroup_files_mean_no_limit(tmp_path):
    assert cgroup_cpu_limit(tmp_path, "") is None
    _write(tmp_path, "cpu.max", "lots 100000")
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "abc")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000")
    assert cgroup_cpu_limit(tmp_path, "0::/\n1:cpu:/\n") is None


def test_usable_cores_is_affinity_capped_by_the_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "affinity_cores", lambda: 8)
    assert usable_cores(tmp_path, "0::/\n") == 8  # no quota: the affinity
    _write(tmp_path, "cpu.max", "250000 100000")
    assert usable_cores(tmp_path, "0::/\n") == 2  # 2.5 cores: rounded down
    _write(tmp_path, "cpu.max", "20000 100000")
    assert usable_cores(tmp_path, "0::/\n") == 1  # a fifth of a core: still one thread
    monkeypatch.setattr(threads, "affinity_cores", lambda: 1)
    _write(tmp_path, "cpu.max", "400000 100000")
    assert usable_cores(tmp_path, "0::/\n") == 1  # taskset to one CPU beats a larger quota


def test_affinity_is_used_not_the_machine_core_count():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity API on this platform")
    assert threads.affinity_cores() == len(os.sched_getaffinity(0))


# -- the override order -------------------------------------------------------------------------------------


def test_override_order():
    assert thread_count({}, cores=6) == (6, "usable cores")
    assert thread_count({"OMP_NUM_THREADS": "3"}, cores=6) == (3, "OMP_NUM_THREADS")
    assert thread_count({"OMP_NUM_THREADS": "4,1"}, cores=6) == (4, "OMP_NUM_THREADS")  # nested-levels syntax
    assert thread_count({"OMP_NUM_THREADS": "3", "MLPKIT_THREADS": "2"}, cores=6) == (2, "MLPKIT_THREADS")
    assert thread_count({"MLPKIT_THREADS": " "}, cores=6) == (6, "usable cores")  # empty counts as unset
    for bad in ("0", "-2", "two"):
        with pytest.raises(ValueError, match="MLPKIT_THREADS must be a positive integer"):
            thread_count({"MLPKIT_THREADS": bad})


def test_configure_keeps_what_the_user_set_and_fills_the_rest(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda *a, **k: 5)
    env = {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "7", "OMP_WAIT_POLICY": "ACTIVE"}
    assert configure_threads(env) == 3
    assert env["OMP_NUM_THREADS"] == "3" and env["MKL_NUM_THREADS"] == "7"  # the user's own values stay
    assert env["OPENBLAS_NUM_THREADS"] == env["NUMBA_NUM_THREADS"] == "3"
    assert env["OMP_WAIT_POLICY"] == "ACTIVE" and env["KMP_BLOCKTIME"] == "0" and env["OMP_MAX_ACTIVE_LEVELS"] == "1"

    env = {}
    assert configure_threads(env) == 5
    assert all(env[v] == "5" for v in THREAD_VARIABLES)
    assert {k: env[k] for k in PASSIVE_WAITING} == PASSIVE_WAITING

    env = {"MLPKIT_THREADS": "2", "OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "8"}
    assert configure_threads(env) == 2
    assert all(env[v] == "2" for v in THREAD_VARIABLES)  # mlpkit's own setting replaces them all
    assert configure_threads(env) == 2  # idempotent


def test_dask_workers_share_the_budget_one_thread_level(monkeypatch):
    assert worker_environment(2, cores=2)["OMP_NUM_THREADS"] == "1"
    assert worker_environment(3, cores=16)["OPENBLAS_NUM_THREADS"] == "5"
    env = worker_environment(4, cores=2)
    assert env["MKL_NUM_THREADS"] == "1" and env["OMP_WAIT_POLICY"] == "PASSIVE" and env["OMP_MAX_ACTIVE_LEVELS"] == "1"
    monkeypatch.setenv("MLPKIT_THREADS", "6")
    assert worker_environment(2)["OMP_NUM_THREADS"] == "3"  # the user's budget, not the machine's cores


# -- start-up -----------------------------------------------------------------------------------------------

_PROBE = """
import json, os, sys
seen = {}

class Watch:
    # records the environment at the moment numpy is first imported (its BLAS reads it then)
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" and "numpy" not in seen:
            seen["numpy"] = os.environ.get("OMP_NUM_THREADS")
        return None

sys.meta_path.insert(0, Watch())
from mlpkit.cli import main
main(sys.argv[1:])
import torch
print(json.dumps({"env": {k: os.environ.get(k) for k in %r}, "at_numpy_import": seen.get("numpy"),
                  "torch": torch.get_num_threads()}))
"""


def _start(args: list[str], **env) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES + tuple(PASSIVE_WAITING)}
    base.pop("MLPKIT_THREADS", None)
    base.update(PYTHONPATH=str(SRC), **env)
    names = [*THREAD_VARIABLES, *PASSIVE_WAITING]
    res = subprocess.run(
        [sys.executable, "-c", _PROBE % names, *args], env=base, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_cli_start_sets_the_layout_before_numpy_is_imported():
    seen = _start(["sample", "rattle", "--help"])  # registering the commands imports numpy
    cores = usable_cores()
    assert seen["at_numpy_import"] == str(cores)
    assert all(seen["env"][v] == str(cores) for v in THREAD_VARIABLES)
    assert seen["env"]["OMP_WAIT_POLICY"] == "PASSIVE" and seen["env"]["KMP_BLOCKTIME"] == "0"
    assert seen["torch"] == cores


def test_cli_start_honours_mlpkit_threads_and_omp_num_threads():
    seen = _start(["--version"], MLPKIT_THREADS="1", OMP_NUM_THREADS="2")
    assert seen["env"]["OMP_NUM_THREADS"] == "1" and seen["torch"] == 1
    seen = _start(["--version"], OMP_NUM_THREADS="1", OMP_WAIT_POLICY="ACTIVE")
    assert seen["env"]["MKL_NUM_THREADS"] == "1" and seen["env"]["OMP_WAIT_POLICY"] == "ACTIVE"


def test_a_bad_mlpkit_threads_is_one_line_and_exit_2():
    env = {**os.environ, "PYTHONPATH": str(SRC), "MLPKIT_THREADS": "many"}
    res = subprocess.run([sys.executable, "-m", "mlpkit", "--version"], env=env, capture_output=True, text=True)
    assert res.returncode == 2
    assert "MLPKIT_THREADS must be a positive integer" in res.stderr and "Traceback" not in res.stderr
