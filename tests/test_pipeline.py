"""The whole pipeline on a tiny setting (GFN2-xTB labels, small networks, few steps): killed with SIGKILL in the
middle, resumed, and checked: finished stages are not redone, no label is computed twice, every artefact is
there, and the HTML report renders in headless Chromium with no broken image."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "tiny" / "mlpkit.yaml"

pytest.importorskip("tblite")


def _state(run_dir: Path) -> dict:
    """The finished stages, read as mlpkit reads them (a version-1 file that nothing rewrote is read too)."""
    try:
        data = json.loads((run_dir / "pipeline-state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data.get("steps", data.get("stages", {}))


def _labelled_rows(run_dir: Path) -> dict[int, tuple]:
    from mlpkit.data import Dataset

    ds = Dataset(run_dir / "dataset.db")
    return {r.id: (r.hash, r.method, r.get("seconds")) for r in ds.rows(status="labelled")}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """Run the tiny project in a subprocess, SIGKILL it once the validate stage is recorded (active learning is
    then running), resume it in a new process, and return (run_dir, state at the kill, labels at the kill)."""
    work = tmp_path_factory.mktemp("tiny")
    cfg = work / "mlpkit.yaml"
    shutil.copy(TINY, cfg)
    run_dir = work / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mlpkit.cli", "run", str(cfg)]
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while time.time() - t0 < 170:
            if "validate" in _state(run_dir) or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run finished (or crashed) before it could be killed:\n" + (
            proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        )
        os.killpg(proc.pid, signal.SIGKILL)  # the run and any Dask worker it started
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    at_kill = _state(run_dir)
    labels_at_kill = _labelled_rows(run_dir)

    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return run_dir, at_kill, labels_at_kill, res, time.time() - t0


def test_killed_run_resumes_and_finishes(finished_run):
    run_dir, at_kill, _, res, _seconds = finished_run  # its wall time is a benchmark's business, not a test's
    assert {"sample", "label", "train", "validate"} <= set(at_kill)
    assert "report" not in at_kill
    final = _state(run_dir)
    assert set(final) == {"sample", "label", "train", "validate", "learn", "production", "speed", "compare", "report"}
    # stages finished before the kill were skipped, not redone
    for stage in ("sample", "label", "train", "validate"):
        assert final[stage]["finished"] == at_kill[stage]["finished"], stage
    assert "done earlier, skipped" in res.stderr
    # the summary table and the report path are printed
    assert "mlpkit run: tiny-water-gfn2" in res.stderr and "report:" in res.stderr
    assert res.stdout.strip().endswith("report.html")


def test_no_label_was_computed_twice(finished_run):
    run_dir, _, labels_at_kill, _, _ = finished_run
    labels = _labelled_rows(run_dir)
    # every label that existed at the kill is still there, untouched
    for row_id, rec in labels_at_kill.items():
        assert labels[row_id] == rec
    # one row per (configuration, method)
    keys = [(h, m) for h, m, _ in labels.values()]
    assert len(keys) == len(set(keys))
    # active learning added labels beyond the initial + test set and reused the pipeline's own
    state = _state(run_dir)
    n_initial = state["label"]["result"]["train"] + state["label"]["result"]["valid"] + state["label"]["result"]["test"]
    assert len(labels) > n_initial


def test_final_artefacts(finished_run):
    from ase.io import read

    import mlpkit

    run_dir, *_ = finished_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] and summary["report"] == str(run_dir / "report.html")
    committee = mlpkit.load(run_dir / "models" / "final")
    assert committee.has_uncertainty
    # the model handed over: the lowest validation force MAE among the iterations whose checklist passed (all of
    # them if none passed), every iteration scored
    learn = json.loads((run_dir / "pipeline-state.json").read_text())["steps"]["learn"]["result"]
    choice = learn["model_choice"]
    scores = {r["iteration"]: r["valid_force_mae"] for r in choice["iterations"]}
    assert len(scores) == learn["iterations"] + 1 and choice["n_valid"] > 0
    passed = {r["iteration"] for r in choice["iterations"] if r["checklist"] == "pass"}
    pool = {i: v for i, v in scores.items() if i in passed} or scores
    assert scores[choice["chosen_iteration"]] == min(pool.values())
    assert learn["final_model"].endswith(f"iter-{choice['chosen_iteration']:03d}/model")
    traj = read(run_dir / "production" / "production.traj", ":")
    prod = json.loads((run_dir / "production" / "production.json").read_text())
    assert len(traj) == prod["n_frames"] >= 10
    assert prod["properties"]["kind"] == "molecule"
    assert len(prod["properties"]["harmonic_cm-1"]) == 3  # water: 3N - 6 modes
    assert (run_dir / "production" / "properties" / "spectrum.png").stat().st_size > 10_000
    assert (run_dir / "production" / "uncertain.extxyz").exists()
    speed = json.loads((run_dir / "speed.json").read_text())
    kinds = {r["kind"] for r in speed["rows"]}
    assert {"reference", "mlp", "baseline"} <= kinds
    assert all(r["ns_per_day"] > 0 for r in speed["rows"])
    for which in ("initial", "final"):
        assert (run_dir / "validation" / which / "validation.json").exists()


def _check_images_decode(html: str) -> int:
    from PIL import Image

    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    for data in uris:
        Image.open(io.BytesIO(base64.b64decode(data))).verify()
    return len(uris)


def test_report_renders_in_headless_chromium(finished_run, tmp_path):
    run_dir, *_ = finished_run
    html = (run_dir / "report.html").read_text()
    for heading in ("Summary", "Validation of the final potential", "Active learning", "Production MD", "Speed"):
        assert f">{heading}" in html
    n_images = _check_images_decode(html)
    assert n_images >= 8
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        pytest.skip("no chromium on PATH (apt-get install -y chromium) to render the report")
    # the browser itself counts images that failed to load (naturalWidth 0) after the page's load event
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load', function () {"
        "var imgs = document.images, bad = 0;"
        "for (var i = 0; i < imgs.length; i++) { if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad++; }"
        "document.body.setAttribute('data-images', imgs.length + ':' + bad); });</script>"
    )
    probe.write_text(html.replace("</body>", script + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [chromium, *flags, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    m = re.search(r'data-images="(\d+):(\d+)"', dom)
    assert m, "chromium did not render the page"
    assert int(m.group(1)) == n_images and int(m.group(2)) == 0, f"images: {m.group(1)}, broken: {m.group(2)}"
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, *flags, "--window-size=1200,4000", f"--screenshot={shot}", (run_dir / "report.html").as_uri()],
        capture_output=True,
        timeout=120,
    )
    from PIL import Image

    img = Image.open(shot).convert("L")
    assert img.size == (1200, 4000)
    lo, hi = img.getextrema()
    assert hi - lo > 100  # not a blank page
    keep = os.environ.get("MLPKIT_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_config_changes_rerun_only_what_depends_on_them(finished_run):
    import yaml

    from mlpkit.errors import InputError
    from mlpkit.workflows.project.runner import run_project

    run_dir, *_ = finished_run
    cfg_path = run_dir.parent / "mlpkit.yaml"
    original = cfg_path.read_text()
    before = _state(run_dir)
    try:
        data = yaml.safe_load(original)
        data["report"] = {"title": "renamed"}
        cfg_path.write_text(yaml.safe_dump(data))
        run_project(cfg_path, progress=False)
        after = _state(run_dir)
        for stage in ("sample", "label", "train", "validate", "learn", "production", "speed"):
            assert after[stage]["finished"] == before[stage]["finished"], stage
        assert "renamed" in (run_dir / "report.html").read_text()
        # new sampling settings would mix old and new configurations: refused before anything runs
        data["sampling"]["n_configs"] = 14
        cfg_path.write_text(yaml.safe_dump(data))
        with pytest.raises(InputError, match="sampled with other settings"):
            run_project(cfg_path, progress=False)
        assert _state(run_dir)["learn"]["finished"] == before["learn"]["finished"]
    finally:
        cfg_path.write_text(original)
        run_project(cfg_path, progress=False)  # the report back to the original title, for the tests after this one


def _as_version_1(run_dir: Path) -> None:
    """Rewrite both state files of a run directory in the format of earlier mlpkit versions."""
    project = json.loads((run_dir / "pipeline-state.json").read_text())
    (run_dir / "pipeline-state.json").write_text(json.dumps({"version": 1, "stages": project["steps"]}))
    learn = json.loads((run_dir / "state.json").read_text())
    done = {k: rec["result"] for k, rec in learn["steps"].items()}
    (run_dir / "state.json").write_text(json.dumps({"version": 1, "done": done, **learn["values"]}))


def test_run_directory_of_an_earlier_version_resumes(finished_run, tmp_path):
    """A finished run directory whose state files are in the version-1 formats resumes: every stage of `mlpkit
    run` and every step of the active-learning run is recognised as done, and nothing is labelled again."""
    from mlpkit.config.active_learning import ActiveLearningConfig
    from mlpkit.workflows.active_learning.loop import run_active_learning
    from mlpkit.workflows.project.runner import run_project

    run_dir, *_ = finished_run
    work = tmp_path / "copy"
    shutil.copytree(run_dir.parent, work)
    old = work / run_dir.name
    before = _state(old)
    labels = _labelled_rows(old)
    _as_version_1(old)
    summary = run_project(work / "mlpkit.yaml", progress=False)
    assert summary["complete"]
    after = _state(old)
    for stage in before:
        assert after[stage]["finished"] == before[stage]["finished"], stage
    cfg = ActiveLearningConfig.from_dict(json.loads((old / "config.json").read_text()))
    al = run_active_learning(cfg, old, progress=False)
    assert al.iterations == before["learn"]["result"]["iterations"]
    assert _labelled_rows(old) == labels


def test_run_directory_this_version_cannot_read_is_refused(finished_run, tmp_path):
    from mlpkit.errors import InputError
    from mlpkit.workflows.project.runner import run_project

    run_dir, *_ = finished_run
    work = tmp_path / "copy"
    work.mkdir()
    shutil.copy(run_dir.parent / "mlpkit.yaml", work / "mlpkit.yaml")
    (work / run_dir.name).mkdir()
    (work / run_dir.name / "pipeline-state.json").write_text(json.dumps({"version": 99, "steps": {}}))
    with pytest.raises(InputError, match="newer mlpkit") as exc:
        run_project(work / "mlpkit.yaml", progress=False)
    assert str(work / run_dir.name) in str(exc.value) and "new run directory" in str(exc.value)
