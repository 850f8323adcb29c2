"""The potential-driven sampling table of docs/benchmarks/screening.md from finished runs of run_all.sh.

For each run: the labels AL used, how it stopped, the final committee's force MAE on each independent test run
(PySCF PBE/def2-SVP Langevin MD at 300 K and 1000 K, bench/data; the same frames for every run), re-scored here from
the saved model, wall and CPU (user+sys) time of the run, and the geometry of the 20 initial frames the driver made
(mean O–H, Å, and H–O–H angle, degrees), beside the test data's.

    python bench/active_learning_driver/collect.py [RUNS (default runs/driver)]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
TESTS = {
    "300 K": DATA / "h2o-pbe-svp-300K-langevin.extxyz",
    "1000 K": DATA / "h2o-pbe-svp-1000K-langevin.extxyz",
}
ORDER = ["gfn2", "chgnet"]


def water_geometry(images) -> tuple[float, float]:
    """Mean O–H distance (Å) and H–O–H angle (degrees) of single-water frames."""
    oh, ang = [], []
    for a in images:
        o = int(np.flatnonzero(a.numbers == 8)[0])
        h = np.flatnonzero(a.numbers == 1)
        v = a.positions[h] - a.positions[o]
        d = np.linalg.norm(v, axis=1)
        oh += d.tolist()
        ang.append(np.degrees(np.arccos(np.dot(v[0], v[1]) / (d[0] * d[1]))))
    return float(np.mean(oh)), float(np.mean(ang))


def times(run: Path) -> tuple[float, float]:
    """(wall, cpu) seconds summed over the invocations recorded in RUN.time (lines: wall user sys rc)."""
    f = run.with_suffix(".time")
    if not f.exists():
        return float("nan"), float("nan")
    rows = [ln.split() for ln in f.read_text().splitlines() if ln.strip()]
    return sum(float(r[0]) for r in rows), sum(float(r[1]) + float(r[2]) for r in rows)


def score(run: Path, final: int, tests: dict) -> dict[str, float]:
    """Force MAE (eV/Å, all components) of the run's final committee on each test file."""
    from mlpkit.potentials.registry import load_potential
    from mlpkit.workflows.active_learning.metrics import evaluate_committee

    model = load_potential(run / f"iter-{final:03d}" / "model")
    return {k: evaluate_committee(model, frames)["forces_mae"] for k, frames in tests.items()}


def main(runs_dir: str = "runs/driver") -> None:
    from mlpkit.files import read_images

    root = Path(runs_dir)
    tests = {k: read_images(p) for k, p in TESTS.items()}
    rows = []
    for driver in ORDER:
        for run in sorted(root.glob(f"{driver}-s*")):
            if not run.is_dir() or not (run / "report" / "summary.json").exists():
                continue
            s = json.loads((run / "report" / "summary.json").read_text())
            mae = score(run, s["iterations"], tests)
            wall, cpu = times(run)
            oh, ang = water_geometry(read_images(run / "initial.extxyz"))
            rows.append((driver, run.name, s, mae, wall, cpu, oh, ang))

    print(
        "| run | driver | labels | label rounds | final force MAE 300 K (meV/Å) | final 1000 K | first committee (20 "
        "labels) 300 K / 1000 K | initial O–H, H–O–H | wall s | CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for driver, name, s, mae, wall, cpu, oh, ang in rows:
        first = s["curve"][0].get("forces_mae_by_temperature") or {}
        print(
            f"| `{name}` | {s.get('driver', {}).get('driver', driver)} | {s['n_labels']} | {s['iterations']} "
            f"| {mae['300 K'] * 1000:.1f} | {mae['1000 K'] * 1000:.1f} | "
            f"{first.get('300', float('nan')) * 1000:.1f} / {first.get('1000', float('nan')) * 1000:.1f} | "
            f"{oh:.3f} Å, {ang:.1f}° | {wall:.0f} | {cpu:.0f} |"
        )
        if not s["stopped_because"].startswith("converged"):
            print(f"|  | stopped: {s['stopped_because']} |  |  |  |  |  |  |  |  |")
    print()
    print(
        "| driver | runs | labels (mean) | final force MAE 300 K (mean ± sd, meV/Å) | final 1000 K | first committee "
        "300 K / 1000 K (mean) | CPU s (mean) |"
    )
    print("|---|---|---|---|---|---|---|")
    for driver in ORDER:
        sel = [r for r in rows if r[0] == driver]
        if not sel:
            continue
        lab = np.array([r[2]["n_labels"] for r in sel], float)
        m3 = np.array([r[3]["300 K"] for r in sel]) * 1000
        m10 = np.array([r[3]["1000 K"] for r in sel]) * 1000
        cpu = np.array([r[5] for r in sel])
        f3 = np.mean([r[2]["curve"][0]["forces_mae_by_temperature"]["300"] for r in sel]) * 1000
        f10 = np.mean([r[2]["curve"][0]["forces_mae_by_temperature"]["1000"] for r in sel]) * 1000
        print(
            f"| {driver} | {len(sel)} | {lab.mean():.0f} | {m3.mean():.1f} ± {m3.std():.1f} | "
            f"{m10.mean():.1f} ± {m10.std():.1f} | {f3:.1f} / {f10:.1f} | {np.nanmean(cpu):.0f} |"
        )
    print()
    for k, frames in tests.items():
        oh, ang = water_geometry(frames)
        print(f"test {k}: {len(frames)} frames, mean O–H {oh:.3f} Å, H–O–H {ang:.1f}°")


if __name__ == "__main__":
    main(*sys.argv[1:])
