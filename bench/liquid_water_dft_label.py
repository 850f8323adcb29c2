"""What one periodic-DFT label of a liquid-water box costs here: GPAW in plane-wave mode (PBE, Γ point), energy +
forces + stress of packed water boxes, through mlpkit's labeler (what `reference: {method: gpaw}` runs).

    OMP_NUM_THREADS=1 python bench/liquid_water_dft_label.py --boxes 8 --ecut 400

CPU time (user + sys of this process) is printed beside wall time: on a shared machine it is the fairer number.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boxes", type=int, nargs="+", default=[8], help="molecules per box (1.0 g/cm³)")
    ap.add_argument("--ecut", type=float, default=400.0, help="plane-wave cutoff, eV")
    args = ap.parse_args()
    from mlpkit.data import molecular_box
    from mlpkit.labelers import make_labeler

    labeler = make_labeler("gpaw", xc="PBE", ecut=args.ecut, kpts=[1, 1, 1])
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; method {labeler.method}")
    print("\n| box | atoms | edge (Å) | CPU (s) | wall (s) | SCF ok | pressure (kbar) | max force (eV/Å) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.boxes:
        box = molecular_box("H2O", n, density=1.0, seed=0)
        w, c = time.perf_counter(), _cpu()
        label = labeler.label(box)
        cpu, wall = _cpu() - c, time.perf_counter() - w
        pressure = -float(np.mean(label.stress[:3])) * 1602.1766 if label.stress is not None else float("nan")
        print(
            f"| water-box:{n} | {len(box)} | {box.cell.lengths()[0]:.2f} | {cpu:.0f} | {wall:.0f} | yes | "
            f"{pressure:.1f} | {np.abs(label.forces).max():.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
