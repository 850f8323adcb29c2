"""MD cost of an exported SNAP model on the LAMMPS engine (1 and 2 MPI ranks) beside mlpkit's own BPNN step.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/mtp_lammps_md.py [--sides 7,32] [--steps 5] [--json out.json]

Boxes: periodic liquid water from bench/water_boxes.py (3 n³ atoms: 1,029 at n = 7, 98,304 at n = 32). Model: SNAP
2Jmax = 6, 5 Å cutoff, element weights 0.5 (H) / 1.0 (O), small random coefficients (the cost of ``pair_style
snap`` does not depend on their values; a monomer-trained model would blow a liquid box apart, and the timing is
what is measured here). LAMMPS: ``run_lammps_md`` (NVT, 0.5 fs, no dump), µs/atom/step from LAMMPS's own "Loop
time" (setup excluded). BPNN: ``create_potential("bpnn", [box])`` float64 (6 Å / 4 Å, compiled kernels, random
weights) through ``Potential.predict`` with atoms moved between steps, median step after one warm-up.
Parallel efficiency = t(1 rank) / (2 t(2 ranks)). On 2 cores shared with other jobs, the 2-rank numbers are a lower
bound of what an idle machine gives.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    from mlpkit.potentials.registry import create_potential
    from mlpkit.potentials.snap import SNAPPotential
    from mlpkit.potentials.snap.md import run_lammps_md
    from water_boxes import water_box

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="7,32")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    model = SNAPPotential(["H", "O"], cutoff=5.0, twojmax=6)
    model.reference_energies = np.array([-13.6, -2041.0])
    model.coefficients = np.random.default_rng(0).normal(0, 1e-3, (2, 30))
    rows = []
    for side in [int(x) for x in args.sides.split(",")]:
        box = water_box(side)
        row = {"atoms": len(box)}
        for ranks in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                run = run_lammps_md(model, box, steps=args.steps, ranks=ranks, out_dir=tmp)
            row[f"snap_lammps_{ranks}"] = run.us_per_atom_step
            print(f"  {len(box)} atoms, {ranks} rank(s): {run.us_per_atom_step:.1f} µs/atom/step", flush=True)
        row["efficiency"] = row["snap_lammps_1"] / (2 * row["snap_lammps_2"])
        bpnn = create_potential("bpnn", [box], dtype="float64")
        atoms = box.copy()
        bpnn.predict([atoms])
        times = []
        rng = np.random.default_rng(0)
        for _ in range(args.steps):
            atoms.positions += rng.normal(0, 0.005, atoms.positions.shape)
            t0 = time.perf_counter()
            bpnn.predict([atoms])
            times.append(time.perf_counter() - t0)
        row["bpnn"] = 1e6 * float(np.median(times)) / len(box)
        print(f"  {len(box)} atoms, bpnn: {row['bpnn']:.1f} µs/atom/step", flush=True)
        rows.append(row)
    print("\n| atoms | SNAP in LAMMPS, 1 rank | 2 ranks | parallel efficiency | mlpkit BPNN, 1 thread |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['atoms']} | {r['snap_lammps_1']:.1f} | {r['snap_lammps_2']:.1f} | {r['efficiency']:.2f} | "
            f"{r['bpnn']:.1f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
