"""An independent 500 K NVE water run for the universal-potential benchmark, made with mlpkit's own tools.

Same protocol as ../shared/data/h2o-pbe-svp-500K-nve.extxyz (one H2O with 5 Å vacuum, Maxwell-Boltzmann velocities
at 500 K with centre-of-mass motion and rotation removed, velocity Verlet at 1 fs driven by GFN2-xTB, a frame every
10 steps) but another seed, so its frames are not those of the shared file; each frame is labelled with PySCF
PBE/def2-SVP (mlpkit's labeler, the method of the shared file).

    python bench/universal_water_nve.py --frames 80 --out /tmp/universal-h2o-nve-seed11.extxyz
    python bench/universal_water_nve.py --frames 80 --temperature 1000 --thermostat langevin --equilibrate 200 \
        --out /tmp/universal-h2o-1000K.extxyz        # the issue's independent equilibrated 1000 K run
"""

from __future__ import annotations

import argparse
import time

from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from mlpkit.labelers import make_labeler
from mlpkit.sampling import md_snapshots


def make_run(n_frames: int, seed: int, temperature: float = 500.0, thermostat: str = "nve", equilibrate: int = 0):
    """``n_frames`` frames 10 fs apart after ``equilibrate`` steps (1 fs), labelled with PySCF PBE/def2-SVP."""
    driver = make_labeler("gfn2")
    start = molecule("H2O", vacuum=5.0)
    skip = equilibrate // 10
    frames = md_snapshots(
        start,
        driver.calculator(),
        temperature=temperature,
        steps=10 * (n_frames + skip),
        every=10,
        thermostat=thermostat,
        seed=seed,
    )[skip:]
    dft = make_labeler("pyscf", xc="PBE", basis="def2-SVP")
    t0 = time.perf_counter()
    for atoms in frames:
        label = dft.label(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=label.energy, forces=label.forces)
        atoms.info["method"] = dft.method
    print(f"labelled {len(frames)} frames with {dft.method} in {time.perf_counter() - t0:.0f} s")
    return frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--temperature", type=float, default=500.0)
    ap.add_argument("--thermostat", default="nve", choices=["nve", "langevin"])
    ap.add_argument("--equilibrate", type=int, default=0, help="MD steps (1 fs) before the first frame kept")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    frames = make_run(args.frames, args.seed, args.temperature, args.thermostat, args.equilibrate)
    write(args.out, frames, format="extxyz")


if __name__ == "__main__":
    main()
