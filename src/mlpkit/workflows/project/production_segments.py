"""Production MD in segments, so a killed long run (a nanosecond of a large box is hours to days) loses at most the
segment it was in.

A run of ``steps`` is cut into segments of ``segment_steps`` (a multiple of the frame interval). Each finished
segment is written atomically to ``<out_dir>/segments/``: its frames (``segment-KKKK.extxyz``, global step numbers,
with momenta), the frames its watchdog flagged (``segment-KKKK-uncertain.extxyz``) and its per-step temperatures and
uncertainties with its outcome (``segment-KKKK.npz``, written last: it marks the segment done). Segment k + 1
starts from segment k's last frame, momenta included, with the Langevin noise seeded ``seed + k + 1``. Running the
stage again loads the finished segments and continues from the first unfinished one; a ``key.json`` of what the
segments depend on (the settings, the training start's and the potential's files) makes a changed
configuration, training start or potential start over instead of continuing a different run.

A run of one segment (``steps <= segment_steps`` or ``segment_steps`` 0) is one :func:`run_md` call as before,
the trajectory written frame by frame.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.files import atomic_write_images, atomic_write_json, read_images
from mlpkit.md.dynamics import MDResult, UncertaintyWatchdog, run_md


def segment_plan(steps: int, segment_steps: int, interval: int) -> list[int]:
    """Steps of each segment: ``segment_steps`` rounded down to a multiple of ``interval`` (at least one interval),
    the last segment the rest; one segment when ``segment_steps`` is 0 or not below ``steps``."""
    if segment_steps <= 0 or segment_steps >= steps:
        return [steps]
    size = max(interval, segment_steps // interval * interval)
    plan = [size] * (steps // size)
    if steps % size:
        plan.append(steps % size)
    return plan


def segments_key(settings: dict, files: list[Path]) -> str:
    """A hash of what a segmented run depends on: ``settings`` (JSON-able: the settings that make the start and
    the run) and the bytes of ``files`` (the potential's files, the training start): inputs, not the computed start,
    whose last digits may differ in another process (another thread count sums in another order)."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in files:
        paths = sorted(q for q in Path(path).rglob("*") if q.is_file()) if Path(path).is_dir() else [Path(path)]
        for q in paths:
            if q.is_file():
                h.update(q.name.encode())
                h.update(q.read_bytes())
    return h.hexdigest()[:16]


def _offset(frames: list[Atoms], steps_before: int, timestep: float) -> None:
    for f in frames:
        if "step" in f.info:
            f.info["step"] = int(f.info["step"]) + steps_before
        if "time_fs" in f.info:
            f.info["time_fs"] = float(f.info["time_fs"]) + steps_before * timestep


def _save(seg_dir: Path, k: int, res: MDResult, max_seen: float) -> None:
    """The segment's frames, flagged frames, then (last, atomically: it marks the segment done) its arrays."""
    atomic_write_images(seg_dir / f"segment-{k:04d}.extxyz", res.frames)
    atomic_write_images(seg_dir / f"segment-{k:04d}-uncertain.extxyz", res.uncertain_frames)
    tmp = seg_dir / f".segment-{k:04d}.npz.tmp"
    with open(tmp, "wb") as fh:
        np.savez(
            fh,
            temperatures=res.temperatures,
            uncertainties=res.uncertainties,
            steps_done=res.steps_done,
            seconds=res.seconds,
            n_dof=res.n_dof,
            max_seen=max_seen,
            stopped_because=np.array(res.stopped_because),
            # the last frame at full precision (the extxyz rounds positions): the next segment starts from it
            last_positions=res.frames[-1].positions if res.frames else np.zeros((0, 3)),
            last_momenta=res.frames[-1].get_momenta() if res.frames else np.zeros((0, 3)),
            last_cell=res.frames[-1].cell.array if res.frames else np.zeros((3, 3)),
        )
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, seg_dir / f"segment-{k:04d}.npz")


def _load(seg_dir: Path, k: int) -> tuple[MDResult, float] | None:
    """A finished segment (result, largest uncertainty seen), or None."""
    done = seg_dir / f"segment-{k:04d}.npz"
    if not done.exists():
        return None
    with np.load(done) as z:
        frames = read_images(seg_dir / f"segment-{k:04d}.extxyz")
        if frames:
            frames[-1].positions = z["last_positions"]
            frames[-1].set_momenta(z["last_momenta"])
            frames[-1].cell = z["last_cell"]
        return MDResult(
            frames=frames,
            stopped_because=str(z["stopped_because"]),
            steps_done=int(z["steps_done"]),
            uncertain_frames=read_images(seg_dir / f"segment-{k:04d}-uncertain.extxyz"),
            temperatures=z["temperatures"],
            uncertainties=z["uncertainties"],
            seconds=float(z["seconds"]),
            n_dof=int(z["n_dof"]),
        ), float(z["max_seen"])


def run_segmented(start: Atoms, calculator, *, steps: int, segment_steps: int, out_dir: Path, key: str,
                  trajectory: Path, watchdog: UncertaintyWatchdog | None = None, say=None,
                  **md) -> tuple[MDResult, float, int]:  # fmt: skip
    """Production MD of ``steps`` from ``start`` in segments (see the module). ``md``: the other :func:`run_md`
    arguments (``temperature``, ``timestep``, ``interval``, ``seed``, ...). Writes the whole trajectory to
    ``trajectory`` at the end. Returns (the merged result, the largest uncertainty seen, segments loaded from an
    earlier run)."""
    plan = segment_plan(steps, segment_steps, md.get("interval", 10))
    if len(plan) == 1:
        res = run_md(start, calculator, steps=steps, trajectory=trajectory, watchdog=watchdog, **md)
        return res, float(watchdog.max_seen) if watchdog is not None else 0.0, 0
    seg_dir = Path(out_dir) / "segments"
    key_file = seg_dir / "key.json"
    if seg_dir.exists() and (not key_file.exists() or json.loads(key_file.read_text()).get("key") != key):
        shutil.rmtree(seg_dir)  # the segments of another configuration: not to be continued
    seg_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(key_file, {"key": key, "segments": plan})
    timestep, seed = md.pop("timestep", 0.5), md.pop("seed", 0)
    parts: list[MDResult] = []
    loaded, max_seen, done_steps, begin = 0, 0.0, 0, start
    for k, n in enumerate(plan):
        kept = _load(seg_dir, k)
        if kept is not None:
            res, seen = kept
            loaded += 1
        else:
            if say:
                say(f"segment {k + 1}/{len(plan)}: steps {done_steps + 1}-{done_steps + n}")
            if watchdog is not None:
                watchdog.reset()  # its flagged frames and largest uncertainty: this segment's
            res = run_md(begin, calculator, steps=n, timestep=timestep, seed=seed + k, watchdog=watchdog,
                         initial_velocities=k == 0, **md)  # fmt: skip
            seen = float(watchdog.max_seen) if watchdog is not None else 0.0
            _offset(res.frames, done_steps, timestep)
            _offset(res.uncertain_frames, done_steps, timestep)
            _save(seg_dir, k, res, seen)
        parts.append(res)
        max_seen = max(max_seen, seen)
        done_steps += res.steps_done
        if res.stopped_because or not res.frames:
            break
        begin = res.frames[-1]
    last = parts[-1]
    flagged = [f for p in parts for f in p.uncertain_frames]
    if watchdog is not None:
        flagged = flagged[-watchdog.max_frames :]  # the watchdog keeps its last max_frames; so does the whole run
    merged = MDResult(
        frames=[f for p in parts for f in p.frames],
        stopped_because=last.stopped_because,
        steps_done=done_steps,
        uncertain_frames=flagged,
        temperatures=np.concatenate([p.temperatures for p in parts]),
        uncertainties=np.concatenate([p.uncertainties for p in parts]),
        seconds=sum(p.seconds for p in parts),
        n_dof=max(p.n_dof for p in parts),
        target_temperature=md.get("temperature"),
        ensemble=md.get("ensemble", "nvt"),
        friction=md.get("friction"),
    )
    if trajectory.suffix == ".traj":
        _write_traj(trajectory, merged.frames)
    else:
        atomic_write_images(trajectory, merged.frames)
    return merged, max_seen, loaded


def _write_traj(path: Path, frames: list[Atoms]) -> None:
    """The frames as an ASE trajectory (momenta kept), written to a temporary file and renamed."""
    from ase.io.trajectory import Trajectory

    tmp = path.with_name(f".{path.name}.tmp")
    with Trajectory(str(tmp), "w") as traj:
        for f in frames:
            traj.write(f)
    tmp.replace(path)
