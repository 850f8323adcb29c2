"""Make the hot-water set of the extrapolation-grade benchmark: Langevin MD at 1000 K driven by GFN2-xTB,
every frame labelled with PySCF PBE/def2-SVP (the level of theory of ../shared/data/h2o-pbe-svp-500K-nve.extxyz).

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/mtp_hot_water.py --frames 100

(writes bench/data/h2o-pbe-svp-1000K-langevin-seed1.extxyz).

Start: frame 0 of the shared NVE set; velocities at 1000 K, 0.5 fs steps, friction 0.01/fs, 200 steps of
equilibration discarded, then a frame every 20 steps (10 fs). About 1 s per frame on one core (PySCF).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    from mlpkit.labelers import make_labeler
    from mlpkit.sampling import md_snapshots

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="bench/data/h2o-pbe-svp-1000K-langevin-seed1.extxyz")
    args = parser.parse_args()
    start = read(SHARED / "h2o-pbe-svp-500K-nve.extxyz", index=0)
    start.calc = None
    driver = make_labeler("gfn2")
    every, equil = 20, 200
    frames = md_snapshots(
        start,
        driver.calculator(),
        temperature=args.temperature,
        steps=equil + every * args.frames,
        every=every,
        thermostat="langevin",
        timestep=0.5,
        seed=args.seed,
    )[equil // every :]
    labeler = make_labeler("pyscf", xc="PBE", basis="def2-SVP", threads=1)
    out = []
    t0 = time.perf_counter()
    for k, atoms in enumerate(frames):
        label = labeler.label(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=label.energy, forces=label.forces)
        atoms.info.update({"method": labeler.method, "source": f"gfn2xtb-langevin-{args.temperature:.0f}K", "frame": k})
        out.append(atoms)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write(args.out, out)
    print(f"{len(out)} frames labelled in {time.perf_counter() - t0:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
