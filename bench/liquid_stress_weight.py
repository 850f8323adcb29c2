"""Which stress weight a BPNN of liquid water wants: GFN2-xTB labels (energy, forces, stress) of 8-molecule boxes from
short GFN2-xTB NVT runs at three densities, and the same small BPNN fitted with several ``stress_weight`` values; the
test errors (energy, forces, stress, pressure) on frames of independent runs at the same densities.

    OMP_NUM_THREADS=1 python bench/liquid_stress_weight.py --weights 0 1 10 100 1000

The labelled frames are cached in --cache (extxyz), so the fits can be rerun without GFN2-xTB. CPU time (user + sys)
is printed beside wall time: on a shared machine it is the fairer number.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

#: eV/Å³ → kbar
EV_PER_A3_IN_KBAR = 1602.1766


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def labelled_frames(densities, n_train: int, n_test: int, steps_between: int, seed: int) -> list:
    """Per density: pack water-box:8, relax + 20 NVT steps (GFN2-xTB), then one NVT run for training frames and an
    independent one (other seed) for test frames, every ``steps_between`` 0.5-fs steps; each frame labelled."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from mlpkit.data import molecular_box
    from mlpkit.labelers import make_labeler
    from mlpkit.sampling import equilibrate_box, md_snapshots

    labeler = make_labeler("gfn2")
    out = []
    for k, density in enumerate(densities):
        box = molecular_box("H2O", 8, density=density, seed=seed + k)
        box = equilibrate_box(box, labeler, temperature=300.0, relax_steps=30, nvt_steps=20, seed=seed + k)
        for split, n, run_seed in (("train", n_train, seed + 100 + k), ("test", n_test, seed + 200 + k)):
            frames = md_snapshots(
                box, labeler, temperature=300.0, steps=n * steps_between, every=steps_between,
                thermostat="langevin", timestep=0.5, friction=0.01, seed=run_seed,
            )  # fmt: skip
            for f in frames:
                lab = labeler.label(f)
                f.calc = SinglePointCalculator(f, energy=lab.energy, forces=lab.forces, stress=lab.stress)
                f.info.update(split=split, target_density=density)
                out.append(f)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0, 10.0, 100.0, 1000.0])
    ap.add_argument("--densities", type=float, nargs="+", default=[0.9, 1.0, 1.1])
    ap.add_argument("--n-train", type=int, default=6, help="training frames per density")
    ap.add_argument("--n-test", type=int, default=3, help="test frames per density (an independent run)")
    ap.add_argument("--steps-between", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/liquid-stress-weight.extxyz"))
    args = ap.parse_args()
    from ase.io import read, write

    from mlpkit.potentials import create_potential

    w0, c0 = time.perf_counter(), _cpu()
    if args.cache.is_file():
        frames = read(args.cache, index=":")
        print(f"{len(frames)} labelled frames read from {args.cache}")
    else:
        frames = labelled_frames(args.densities, args.n_train, args.n_test, args.steps_between, args.seed)
        write(args.cache, frames)
        print(f"{len(frames)} frames labelled in {time.perf_counter() - w0:.0f} s wall, {_cpu() - c0:.0f} s CPU")
    train = [f for f in frames if f.info["split"] == "train"]
    test = [f for f in frames if f.info["split"] == "test"]
    ref_f = np.concatenate([f.get_forces() for f in test])
    ref_s = np.array([f.get_stress(voigt=True) for f in test])
    ref_e = np.array([f.get_potential_energy() / len(f) for f in test])
    print(
        f"train {len(train)}, test {len(test)} frames (24 atoms); RMS test force {np.sqrt(np.mean(ref_f**2)):.3f} "
        f"eV/Å; test pressures {(-ref_s[:, :3].mean(1) * EV_PER_A3_IN_KBAR).round(1).tolist()} kbar"
    )
    print(
        "\n| stress_weight | energy MAE (meV/atom) | force MAE (meV/Å) | stress RMSE (kbar) | pressure MAE (kbar) | "
        "fit CPU (s) |\n|---|---|---|---|---|---|"
    )
    for weight in args.weights:
        c = _cpu()
        pot = create_potential("bpnn", train, cutoff=4.0, hidden=[16, 16], n_radial=8, n_angular=4, init_seed=args.seed)
        pot.fit(train, stress_weight=weight, epochs=args.epochs, batch_size=4, valid_fraction=0.0, keep="last",
                progress=False)  # fmt: skip
        pred = pot.predict(test, stress=True)
        e = np.asarray(pred.energy) / np.array([len(f) for f in test])
        # energies up to a constant per potential: compare after removing the mean offset
        de = (e - ref_e) - np.mean(e - ref_e)
        f_mae = float(np.mean(np.abs(np.concatenate(list(pred.forces)) - ref_f)))
        ds = (np.asarray(pred.stress) - ref_s) * EV_PER_A3_IN_KBAR
        dp = -(np.asarray(pred.stress)[:, :3].mean(1) - ref_s[:, :3].mean(1)) * EV_PER_A3_IN_KBAR
        print(
            f"| {weight:g} | {1000 * np.mean(np.abs(de)):.2f} | {1000 * f_mae:.1f} | {np.sqrt(np.mean(ds**2)):.2f} | "
            f"{np.mean(np.abs(dp)):.2f} | {_cpu() - c:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
