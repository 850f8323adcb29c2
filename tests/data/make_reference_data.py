"""Make the test suite's committed reference data with mlpkit's own tools.

::

    PYTHONPATH=src OMP_NUM_THREADS=1 python tests/data/make_reference_data.py            # all of tests/data
    PYTHONPATH=src python tests/data/make_reference_data.py --frames 20 --out /tmp/x.extxyz  # a quick look

Writes ``tests/data/h2o-pbe-svp-500K-nve.extxyz``: the protocol of the shared water file (``../shared/data``,
made outside mlpkit), repeated with mlpkit's sampling and labelling so that a clone of the repository needs
nothing beside it:

* one water molecule (ASE's ``H2O``) in a box with 5 Å vacuum (``mlpkit.data.read_structures("H2O")``);
* Maxwell-Boltzmann velocities at 500 K, centre-of-mass motion and rotation removed, seed 0;
* velocity-Verlet NVE MD driven by GFN2-xTB (tblite), 1 fs steps, a frame every 10 steps
  (``mlpkit.sampling.md_snapshots``);
* every frame labelled with PySCF RKS PBE/def2-SVP, ``conv_tol`` 1e-10, analytic gradients, each from a fresh
  SCF guess (``mlpkit.labelers.make_labeler("pyscf", reuse_guess=False)``; the rest are its defaults).

Each frame carries ``energy`` (eV) and per-atom ``forces`` (eV/Å), and in its info ``method`` (the labeler's
level of theory), ``source`` and ``frame`` (0-based). 300 frames (3000 MD steps), because the tests index up to
frame 209; labelling takes about 0.7 s a frame on one idle core. The file is written via a temporary file and a
rename, so an interrupted run never leaves half a file. A rerun gives the same frames and labels to SCF round-off.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WATER = HERE / "h2o-pbe-svp-500K-nve.extxyz"


def make_water(out: Path, frames: int, seed: int = 0) -> None:
    """MD (GFN2-xTB, NVE, 500 K, 1 fs, every 10 steps) then PySCF PBE/def2-SVP labels; ``frames`` frames."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from mlpkit.data import read_structures
    from mlpkit.labelers import make_labeler
    from mlpkit.sampling import md_snapshots

    start = time.perf_counter()
    atoms = read_structures("H2O")[0]
    snapshots = md_snapshots(
        atoms, make_labeler("gfn2"), temperature=500.0, steps=10 * frames, every=10, thermostat="nve", seed=seed
    )
    print(f"{len(snapshots)} MD frames in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    # a fresh SCF guess for every frame: each label independent of the others and of their order (a reused
    # density converges to a force ~2e-5 eV/Å away at this conv_tol)
    dft = make_labeler("pyscf", xc="PBE", basis="def2-SVP", conv_tol=1e-10, reuse_guess=False)
    labelled = []
    for i, frame in enumerate(snapshots):
        label = dft.label(frame)
        copy = frame.copy()
        copy.info = {"method": dft.method, "source": "mlpkit-gfn2-md-h2o-500K-nve", "frame": i}
        copy.calc = SinglePointCalculator(copy, energy=label.energy, forces=label.forces)
        labelled.append(copy)
        if (i + 1) % 25 == 0:
            print(f"labelled {i + 1}/{len(snapshots)} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    tmp = out.with_name(out.name + ".part")
    write(tmp, labelled, format="extxyz")
    os.replace(tmp, out)
    print(f"wrote {out} ({len(labelled)} frames, {time.perf_counter() - start:.0f} s)", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="frames to make (default 300)")
    parser.add_argument("--out", type=Path, default=WATER, help=f"extxyz to write (default {WATER})")
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error("--frames must be >= 1")
    make_water(args.out, args.frames)


if __name__ == "__main__":
    main()
