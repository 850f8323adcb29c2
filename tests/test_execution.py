"""Parallel labelling: results stored as they finish, failures recorded, kills lose nothing, threads set per worker.

The tests that write a store run on both backends (``store`` fixture: SQLite file, PostgreSQL server).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.io import write

from helpers_labelling import FlakyLabeler
from mlpkit.data import Dataset, configuration_hash
from mlpkit.errors import InputError
from mlpkit.execution import (
    label_configurations,
    label_pending,
    make_jobqueue_cluster,
    open_client,
    worker_environment,
)
from mlpkit.labelers import make_labeler

TESTS_DIR = Path(__file__).resolve().parent


def bare(frames):
    out = []
    for a in frames:
        b = a.copy()
        b.calc = None
        b.info = {}
        out.append(b)
    return out


def emt_energy(atoms):
    a = atoms.copy()
    a.calc = EMT()
    return a.get_potential_energy(), a.get_forces()


def test_in_process_labelling_and_duplicates(store, water_frames):
    ds = Dataset(store())
    lab = make_labeler("emt")
    images = bare(water_frames[:6])
    rep = label_configurations(images, lab, ds, source="md", workers=0, progress=False)
    assert (rep.labelled, rep.failed, rep.duplicates) == (6, 0, 0)
    for atoms in ds.to_atoms():
        e, f = emt_energy(atoms)
        assert atoms.get_potential_energy() == pytest.approx(e, abs=1e-12)
        assert np.allclose(atoms.get_forces(), f, atol=1e-12)
        assert atoms.info["method"] == "emt" and atoms.info["seconds"] >= 0
    # the same configurations again: nothing added, nothing computed
    rep = label_configurations(images, lab, ds, source="md", workers=0, progress=False)
    assert (rep.labelled, rep.failed, rep.duplicates) == (0, 0, 6)
    assert len(ds) == 6
    # a bad configuration is refused before anything is written
    from ase import Atoms

    with pytest.raises(InputError, match="configuration 1"):
        label_configurations(
            [images[0], Atoms("Si2", positions=[[0, 0, 0], [2.3, 0, 0]])],
            lab,
            ds,
            source="x",
            workers=0,
            progress=False,
        )
    assert len(ds) == 6


def _flaky_setup(location, water_frames, behaviours):
    images = bare(water_frames[:8])
    plan = {configuration_hash(images[i]): what for i, what in behaviours.items()}
    ds = Dataset(location)
    ds.add(images, method="test:flaky-emt", source="md")
    return ds, FlakyLabeler(plan), images


def _check_flaky(ds, images, behaviours):
    by_hash = {r.hash: r for r in ds.rows()}
    for i, atoms in enumerate(images):
        row = by_hash[configuration_hash(atoms)]
        if i in behaviours:
            assert row.status == "failed", (i, behaviours[i])
            assert row.get("energy") is None and row.get("forces") is None
        else:
            assert row.status == "labelled"
            assert row.energy == pytest.approx(emt_energy(atoms)[0], abs=1e-12)
    return by_hash


def test_failures_are_recorded_and_the_run_goes_on(store, water_frames):
    behaviours = {1: "failure", 4: "nan", 6: "error"}
    ds, lab, images = _flaky_setup(store(), water_frames, behaviours)
    rep = label_pending(ds, lab, workers=0, progress=False)
    assert (rep.labelled, rep.failed) == (5, 3)
    rows = _check_flaky(ds, images, behaviours)
    assert "SCF did not converge" in rows[configuration_hash(images[1])].error
    assert "non-finite forces" in rows[configuration_hash(images[4])].error
    assert "RuntimeError" in rows[configuration_hash(images[6])].error
    # failed rows are not retried by a plain rerun
    assert label_pending(ds, lab, workers=0, progress=False).labelled == 0


def test_dask_via_scheduler_address_records_failures_and_crashes(store, water_frames):
    """A real Dask run (through a scheduler address): a label that kills its worker process is recorded too."""
    import dask
    from distributed import LocalCluster

    behaviours = {0: "failure", 3: "crash", 5: "nan"}
    ds, lab, images = _flaky_setup(store(), water_frames, behaviours)
    # fail a task on its first worker death (no retries on fresh workers); a worker holds one task at a time
    config = {"distributed.scheduler.allowed-failures": 0, "distributed.scheduler.worker-saturation": 1.0}
    with (
        dask.config.set(config),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
            processes=True,
        ) as cluster,
    ):
        rep = label_pending(ds, lab, scheduler=cluster.scheduler_address, progress=False)
    assert (rep.labelled, rep.failed) == (5, 3)
    assert rep.workers.startswith("scheduler tcp://")
    rows = _check_flaky(ds, images, behaviours)
    assert "KilledWorker" in rows[configuration_hash(images[3])].error


def test_worker_threads_share_the_cores():
    assert worker_environment(2, cores=2)["OMP_NUM_THREADS"] == "1"
    assert worker_environment(1, cores=2)["OMP_NUM_THREADS"] == "2"
    assert worker_environment(3, cores=16)["OPENBLAS_NUM_THREADS"] == "5"
    assert worker_environment(4, cores=2)["MKL_NUM_THREADS"] == "1"
    with open_client(1) as (client, where):
        seen = client.run(lambda: os.environ.get("OMP_NUM_THREADS"))
    expected = worker_environment(1)["OMP_NUM_THREADS"]
    assert list(seen.values()) == [expected]
    assert "1 worker" in where


def test_jobqueue_cluster_from_yaml(tmp_path):
    config = tmp_path / "jobqueue.yaml"
    config.write_text(
        "type: slurm\njobs: 3\ncores: 8\nprocesses: 4\nmemory: 16GB\nwalltime: '02:00:00'\n"
        "queue: compute\naccount: chem123\n"
    )
    cluster = make_jobqueue_cluster(config)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p compute" in script and "#SBATCH -A chem123" in script
    assert "#SBATCH -t 02:00:00" in script
    assert "export OMP_NUM_THREADS=2" in script  # 8 cores / 4 worker processes
    bad = tmp_path / "bad.yaml"
    bad.write_text("type: nonsense\n")
    with pytest.raises(InputError, match="cluster type"):
        make_jobqueue_cluster(bad)
    with pytest.raises(InputError, match="does not exist"):
        make_jobqueue_cluster(tmp_path / "missing.yaml")


def _store_exists(db: str) -> bool:
    """A PostgreSQL database exists from the start (the fixture makes it); an SQLite file once the run made it."""
    return "://" in db or Path(db).exists()


def _labelled_hashes(db):
    return {r.hash: (r.energy, r.id) for r in Dataset(db).rows(status="labelled")}


def test_kill_mid_run_then_rerun_loses_nothing_and_repeats_nothing(store, tmp_path, water_frames):
    """SIGKILL a real `mlpkit label` (2 Dask workers) mid-run; the rerun labels only what was not stored."""
    n = 24
    images = bare(water_frames[:n])
    configs = tmp_path / "configs.extxyz"
    write(configs, images)
    db = store()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}

    def command(log):
        return [
            sys.executable,
            "-m",
            "mlpkit.cli",
            "label",
            "--input",
            str(configs),
            "--db",
            db,
            "--method",
            "ase",
            "--calculator",
            "helpers_labelling:LoggingEMT",
            "--level-of-theory",
            "emt-logged",
            "--param",
            f"log={log}",
            "--param",
            "delay=0.4",
            "--workers",
            "2",
        ]

    log1, log2 = tmp_path / "run1.log", tmp_path / "run2.log"
    proc = subprocess.Popen(
        command(log1), env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            if _store_exists(db) and Dataset(db).count(status="labelled") >= 6:
                break
            if proc.poll() is not None:
                pytest.fail(f"mlpkit label ended early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        else:
            pytest.fail("no labels written within 120 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the main process and its Dask workers, no clean-up
        proc.wait()
    time.sleep(0.5)
    before = _labelled_hashes(db)
    assert 6 <= len(before) < n, "the kill should land mid-run"
    assert Dataset(db).count(status="pending") == n - len(before)

    done = subprocess.run(command(log2), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = _labelled_hashes(db)
    assert len(after) == n and Dataset(db).count() == n
    # nothing stored before the kill was lost or recomputed
    for h, value in before.items():
        assert after[h] == value
    second = log2.read_text().split()
    assert not set(second) & set(before), "a label stored before the kill was computed again"
    assert len(second) == len(set(second)) == n - len(before)  # each missing one exactly once
    # the only work done twice: calculations that were in flight at the kill (at most one per worker)
    first = log1.read_text().split()
    assert len(set(first) - set(before)) <= 2
    for atoms in Dataset(db).to_atoms():
        assert atoms.get_potential_energy() == pytest.approx(emt_energy(atoms)[0], abs=1e-12)
