"""Committee members fitted side by side in spawned processes are the members a sequential fit gives."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mlpkit.config.system import ExecutionSection
from mlpkit.uncertainty import train_committee
from mlpkit.uncertainty.parallel_fit import PARENT_POLL_SECONDS

SETTINGS = dict(
    n_members=3,
    seed=4,
    hyperparameters={"hidden": [8], "n_radial": 6, "n_angular": 2},
    epochs=15,
    batch_size=4,
    keep="last",
    progress=False,
)


@pytest.fixture(scope="module")
def frames(_water_frames_cached):
    return _water_frames_cached


def test_parallel_committee_equals_sequential(frames, tmp_path):
    train, valid, test = frames[0:80:8], frames[85:90], frames[200:206]
    seq = train_committee(train, valid, processes=1, **SETTINGS)
    par = train_committee(train, valid, processes=2, **SETTINGS)
    a, b = seq.predict(test), par.predict(test)
    assert np.all(a.energy_std > 0)  # the members differ, so equality below is member by member
    np.testing.assert_allclose(b.energy, a.energy, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.energy_std, a.energy_std, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.forces, a.forces, rtol=0, atol=1e-11)
    # warm starts travel to the workers as saved model directories and continue the same way
    seq2 = train_committee(train, valid, processes=1, previous=seq, **{**SETTINGS, "epochs": 5})
    par2 = train_committee(train, valid, processes=2, previous=par, **{**SETTINGS, "epochs": 5})
    np.testing.assert_allclose(par2.predict(test).forces, seq2.predict(test).forces, rtol=0, atol=1e-11)
    assert not np.allclose(seq2.predict(test).forces, a.forces)  # the warm start did train


def test_fit_processes_follow_where_labels_run():
    assert ExecutionSection(workers=2).fit_processes() == 2
    assert ExecutionSection(workers=0).fit_processes() == 1
    assert ExecutionSection(workers=2, train_processes=3).fit_processes() == 3
    assert ExecutionSection(scheduler="tcp://localhost:8786").fit_processes() == 1


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(pid, 0): it has ended, its (dead) parent just never reaped it
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    return True


_HOLDER = """
import os, time
from mlpkit.uncertainty.parallel_fit import spawn_pool
if __name__ == "__main__":
    pool = spawn_pool(1)
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 300)
    time.sleep(300)
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="Linux: reads /proc")
def test_a_fitting_worker_ends_when_its_parent_is_killed(tmp_path):
    """SIGKILL runs no clean-up in the parent: the worker, busy in a long fit, must notice by itself."""
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        worker = int(proc.stdout.readline())
        assert not _gone(worker)
        proc.kill()
        proc.wait()
        deadline = time.time() + 10 * PARENT_POLL_SECONDS + 5
        while not _gone(worker) and time.time() < deadline:
            time.sleep(0.2)
        assert _gone(worker), "the worker outlived its killed parent"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_stopping_the_pool_ends_a_busy_worker():
    """Ctrl-C / SIGTERM in the parent stop the pool with ``_stop_workers``: a worker busy in a long job ends at once
    (shutdown() drops the pool's process table, so the workers must be taken before it)."""
    from mlpkit.uncertainty.parallel_fit import _stop_workers, spawn_pool

    pool = spawn_pool(1)
    worker = pool.submit(os.getpid).result()
    pool.submit(time.sleep, 300)
    _stop_workers(pool)
    deadline = time.time() + 10
    while not _gone(worker) and time.time() < deadline:
        time.sleep(0.1)
    assert _gone(worker), "the busy worker outlived the stopped pool"


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="Linux: reads /proc")
def test_dasks_malloc_setting_does_not_reach_a_fitting_worker(monkeypatch):
    """Dask's Nanny leaves MALLOC_TRIM_THRESHOLD_ in this process's environment; a worker that starts with it mmaps
    and unmaps every tensor above 128 KB (kernel time equal to user time in a fit). Workers start without it, and
    this process keeps it."""
    from mlpkit.uncertainty.parallel_fit import spawn_pool, worker_spawn_environment

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    pool = spawn_pool(1)
    try:
        with worker_spawn_environment():
            at_start = pool.submit(Path.read_bytes, Path("/proc/self/environ")).result()  # as the worker started
    finally:
        pool.shutdown()
    names = {item.split(b"=", 1)[0] for item in at_start.split(b"\0") if item}
    assert b"MALLOC_TRIM_THRESHOLD_" not in names and b"PATH" in names
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"
