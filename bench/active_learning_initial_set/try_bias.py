"""Exploration with and without the uncertainty-driven bias, offline, on one finished AL iteration's committee.

    python bench/active_learning_initial_set/try_bias.py runs/water-fps-s0 1 0,1 0.1,0.005 0.3,0.005 0.3,0.02

Arguments: run directory, iteration, then one "depth,width" (eV, eV/√atom) per setting (depth 0: plain MD on the
committee mean). For each: 4 walkers x 1000 Langevin steps at 500 K from the first 4 initial frames, the
iteration's trust window as watchdog; prints the untrusted fraction, calibrated σ quantiles, the O-H distance and
HOH angle percentiles (1/50/99) of the recorded frames, next to those of the test set's 1000 K half.
"""

import sys
import time
from pathlib import Path

import numpy as np
from ase.io import read

from mlpkit.md.dynamics import UncertaintyWatchdog, run_md
from mlpkit.potentials.registry import load_potential
from mlpkit.uncertainty.bias import UncertaintyBiasedCalculator
from mlpkit.workflows.engine import WorkflowState

run, it = sys.argv[1], int(sys.argv[2])
tr = WorkflowState(Path(run) / "state.json").result(f"iter{it}.train")["trust"]
com = load_potential(f"{run}/iter-{it:03d}/model")
starts = read(f"{run}/initial.extxyz", ":")
test = read(f"{run}/test-set.extxyz", ":")


def geo(frames):
    p = np.array([a.positions for a in frames])
    r1 = np.linalg.norm(p[:, 1] - p[:, 0], axis=1)
    r2 = np.linalg.norm(p[:, 2] - p[:, 0], axis=1)
    cos = np.einsum("ij,ij->i", p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]) / r1 / r2
    return np.concatenate([r1, r2]), np.degrees(np.arccos(cos))


r, ang = geo(test[25:])
print(f"test 1000K: r {np.percentile(r, [1, 50, 99]).round(3)}, angle {np.percentile(ang, [1, 50, 99]).round(1)}")
print("trust", {k: round(v, 3) for k, v in tr.items() if isinstance(v, float)})
for spec in sys.argv[3:]:
    depth, width = (float(x) for x in spec.split(","))
    fr, us, stops = [], [], 0
    t0 = time.perf_counter()
    for w in range(4):
        wd = UncertaintyWatchdog(warn=tr["lower"], stop=tr["upper"], scale=tr["scale"])
        calc = UncertaintyBiasedCalculator(com, depth, width) if depth > 0 else com.calculator()
        res = run_md(
            starts[w],
            calc,
            ensemble="nvt",
            temperature=500,
            timestep=1.0,
            steps=1000,
            friction=0.01,
            interval=10,
            seed=w,
            watchdog=wd,
        )
        fr += res.frames
        us.append(res.uncertainties)
        stops += bool(res.stopped_because)
    u = np.concatenate(us)
    r, ang = geo(fr)
    es = np.array([f.info.get("energy_std", np.nan) for f in fr])
    print(
        f"A,B {spec}: sigE q50/q90 {np.nanpercentile(es, 50):.4f}/{np.nanpercentile(es, 90):.4f} "
        f"{time.perf_counter() - t0:.1f}s stops {stops} untrusted {np.mean(u >= tr['lower']):.3f} "
        f"u q50/q90/max {np.percentile(u, 50):.3f}/{np.percentile(u, 90):.3f}/{u.max():.3f} "
        f"r {np.percentile(r, [1, 50, 99]).round(3)} angle {np.percentile(ang, [1, 50, 99]).round(1)}"
    )
