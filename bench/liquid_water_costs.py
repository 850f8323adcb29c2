"""What liquid water costs here: packing boxes, one GFN2-xTB energy + forces + stress of a periodic box, a few steps
of GFN2-xTB MD of the 16-molecule box (extrapolated to the 2 ps reference-method validation run of issue 19), and the
1 ns production run on >= 3,000 atoms at a given MLP speed (µs/atom/step).

    OMP_NUM_THREADS=1 python bench/liquid_water_costs.py --md-steps 10 --mlp-us 8

CPU time (user + sys of this process) is reported beside wall time: on a shared machine it is the fairer number.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from mlpkit.data import molecular_box
from mlpkit.labelers import make_labeler
from mlpkit.sampling import md_snapshots


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _timed(fn):
    w, c = time.perf_counter(), _cpu()
    out = fn()
    return out, time.perf_counter() - w, _cpu() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--md-steps", type=int, default=10, help="GFN2-xTB NVT steps of the 16-molecule box to time")
    ap.add_argument("--mlp-us", type=float, default=8.0, help="MLP cost in µs/atom/step for the production estimate")
    ap.add_argument("--calls", type=int, default=3, help="timed GFN2-xTB calls per box size")
    args = ap.parse_args()
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")

    molecular_box("H2O", 2, density=1.0)  # imports (scipy, vesin) out of the timings
    print("\n| box | atoms | pack wall (s) | pack CPU (s) | density (g/cm³) |\n|---|---|---|---|---|")
    for name, n, density in (("H2O", 8, 1.0), ("H2O", 32, 1.0), ("H2O", 1000, 1.0), ("C2H6SO", 100, 1.1)):
        box, wall, cpu = _timed(lambda name=name, n=n, density=density: molecular_box(name, n, density=density, seed=0))
        print(f"| {name}-box:{n}@{density} | {len(box)} | {wall:.3f} | {cpu:.3f} | {box.info['density']:.4f} |")

    labeler = make_labeler("gfn2")
    calc = labeler.calculator()
    print("\n| GFN2-xTB, E + F + stress | atoms | CPU per call (s) | wall per call (s) |\n|---|---|---|---|")
    for n in (8, 16, 32):
        box = molecular_box("H2O", n, density=1.0, seed=0)
        box.calc = calc
        box.get_stress()  # first call: setup, not timed
        cpus, walls = [], []
        for k in range(args.calls):
            box.rattle(0.01, seed=k)
            _, wall, cpu = _timed(lambda box=box: (box.get_forces(), box.get_stress()))
            cpus.append(cpu)
            walls.append(wall)
        print(f"| water-box:{n} | {3 * n} | {np.median(cpus):.2f} | {np.median(walls):.2f} |")

    box = molecular_box("H2O", 16, density=1.0, seed=0)
    _, wall, cpu = _timed(
        lambda: md_snapshots(
            box, labeler, temperature=300, steps=args.md_steps, every=args.md_steps, thermostat="nvt", timestep=0.5
        )
    )
    per_step = cpu / args.md_steps
    print(
        f"\nGFN2-xTB NVT MD, water-box:16 (48 atoms), {args.md_steps} steps: {per_step:.2f} s CPU/step "
        f"({wall / args.md_steps:.2f} s wall/step)"
    )
    print("\n| reference MD, 16 waters, 2 ps | timestep (fs) | steps | CPU hours (1 thread) |\n|---|---|---|---|")
    for dt in (0.5, 1.0):
        steps = int(2000 / dt)
        print(f"| GFN2-xTB | {dt} | {steps} | {steps * per_step / 3600:.1f} |")

    print(f"\n| production, 1 ns at {args.mlp_us:g} µs/atom/step | atoms | timestep (fs) | steps | hours (1 thread) |")
    print("|---|---|---|---|---|")
    for atoms in (3000, 3072):
        for dt in (0.5, 1.0):
            steps = int(1e6 / dt)
            print(f"| MLP | {atoms} | {dt} | {steps:,} | {steps * atoms * args.mlp_us * 1e-6 / 3600:.1f} |")


if __name__ == "__main__":
    main()
