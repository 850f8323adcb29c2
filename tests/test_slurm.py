"""Labelling on a real Slurm through dask-jobqueue: `mlpkit label --cluster-config slurm.yaml` on a single-node
Slurm of the test's own (tests/slurm_cluster.py), with one worker job cancelled mid-run.

The slurm.yaml is the one docs/user-guide.md section 3 shows, read from there, so the documented file is the tested
one. Skips with the reason where Slurm cannot start (binaries missing, not root).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ase.calculators.emt import EMT
from ase.io import write

from mlpkit.data import Dataset

TESTS_DIR = Path(__file__).resolve().parent
USER_GUIDE = TESTS_DIR.parent / "docs" / "user-guide.md"


def documented_slurm_yaml() -> str:
    """The ``slurm.yaml`` block of the user guide's cluster section (the ```yaml block that starts ``type: slurm``)."""
    blocks = re.findall(r"```yaml\n(type: slurm\b.*?)```", USER_GUIDE.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/user-guide.md should show exactly one slurm.yaml (a ```yaml block, type: slurm)"
    return blocks[0]


@pytest.fixture(scope="module")
def slurm():
    import slurm_cluster

    reason = slurm_cluster.why_not()
    if reason:
        pytest.skip(reason)
    cluster = slurm_cluster.start_cluster()
    yield cluster
    cluster.stop()


def test_documented_slurm_yaml_is_a_valid_cluster_config():
    from mlpkit.execution import make_jobqueue_cluster

    cfg = yaml.safe_load(documented_slurm_yaml())
    assert cfg["type"] == "slurm" and cfg["jobs"] == 2
    cluster = make_jobqueue_cluster(cfg)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert f"#SBATCH -p {cfg['queue']}" in script and f"#SBATCH -J {cfg['job_name']}" in script


def test_label_on_slurm_survives_a_cancelled_worker_job(slurm, tmp_path, water_frames):
    """2 worker jobs label 24 configurations; one job is scancel'ed mid-run: every label is stored exactly once."""
    n = 24
    images = []
    for a in water_frames[:n]:
        b = a.copy()
        b.calc, b.info = None, {}
        images.append(b)
    write(tmp_path / "configs.extxyz", images)
    (tmp_path / "slurm.yaml").write_text(documented_slurm_yaml())
    job_name = yaml.safe_load(documented_slurm_yaml())["job_name"]
    db, log = str(tmp_path / "w.db"), tmp_path / "calcs.log"
    env = {
        **slurm.env,
        # the worker jobs inherit this environment (sbatch exports it): the test calculator and this source tree
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable, "-m", "mlpkit.cli", "label",
        "--input", "configs.extxyz",
        "--db", db,
        "--method", "ase",
        "--calculator", "helpers_labelling:LoggingEMT",
        "--level-of-theory", "emt-logged",
        "--param", f"log={log}",
        "--param", "delay=0.5",
        "--cluster-config", "slurm.yaml",
    ]  # fmt: skip
    start = time.time()
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    cancelled = None
    try:
        deadline = time.time() + 180
        while cancelled is None:
            assert proc.poll() is None, f"mlpkit label ended early:\n{proc.stdout.read().decode()[-3000:]}"
            assert time.time() < deadline, f"no worker job ran labels within 180 s\n{slurm.logs()}"
            running = [job for job, state in slurm.jobs(job_name) if state == "RUNNING"]
            done = Dataset(db).count(status="labelled") if Path(db).exists() else 0
            if len(running) == 2 and done >= 4:
                cancelled = running[0]
                slurm.run("scancel", cancelled)
            time.sleep(0.2)
        labelled_at_cancel = Dataset(db).count(status="labelled")
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.decode()
    assert proc.returncode == 0, text[-3000:]
    assert labelled_at_cancel < n, "the cancel should land mid-run"
    assert cancelled not in [job for job, _ in slurm.jobs()], "the cancelled job is still queued"

    ds = Dataset(db)
    rows = list(ds.rows())
    assert len(rows) == n and ds.count(status="labelled") == n, ds.summary()
    assert len({r.hash for r in rows}) == n  # every configuration stored once
    for row in rows:  # and its label is the right one
        work = row.toatoms()
        work.calc = EMT()
        assert row.energy == pytest.approx(work.get_potential_energy(), abs=1e-12)
    computed = log.read_text().split()
    assert set(computed) == {r.hash for r in rows}
    # work done twice: at most the calculation in flight on the cancelled job's single worker
    assert len(computed) - n <= 1, f"{len(computed) - n} calculations repeated"
    assert "SLURMCluster with 2 job(s)" in text, text[-3000:]
    print(
        f"slurm: job {cancelled} cancelled at {labelled_at_cancel}/{n} labels, {len(computed) - n} calculation(s) "
        f"repeated, {time.time() - start:.1f} s"
    )


def test_active_learning_labels_on_slurm(slurm, tmp_path):
    """`mlpkit learn` with the documented Slurm options in its execution section: every labelling stage (initial
    set, test set, the iteration's selection) runs on worker jobs, and each label is computed and stored once."""
    from al_helpers import tiny_config

    cfg = yaml.safe_load(documented_slurm_yaml())
    kind, jobs = cfg.pop("type"), cfg.pop("jobs")
    log = tmp_path / "calls.log"
    learn = tiny_config(
        str(log),
        max_iterations=1,
        baseline={"enabled": False},
        execution={"jobqueue": {"kind": kind, "jobs": jobs, "options": cfg}},
    )
    (tmp_path / "learn.yaml").write_text(yaml.safe_dump(learn))
    env = {
        **slurm.env,
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "mlpkit.cli", "learn", "learn.yaml", "--run-dir", "run", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    worker_jobs = {p.stem for p in (tmp_path / cfg["log_directory"]).glob("*.out")}
    assert len(worker_jobs) >= 2 * 3, f"expected 3 labelling stages of 2 jobs each on Slurm, got {worker_jobs}"
    ds = Dataset(tmp_path / "run" / "dataset.db")
    calls = log.read_text().split()
    assert len(calls) == len(set(calls)), "a reference calculation was repeated"
    labelled = [r.hash for r in ds.rows(status="labelled")]
    assert len(labelled) == len(set(labelled)) == len(calls) and ds.count(status="pending") == 0
