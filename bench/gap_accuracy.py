"""The GAP family (sparse GP on SOAP): accuracy on the shared DFT data, its variance against true errors, MD cost.

    python bench/gap_accuracy.py --only water     # the bar: train frames 0-49, test frames 100-299 (PBE/def2-SVP)
    python bench/gap_accuracy.py --only ethanol   # train frames 0-299, test 300-449
    python bench/gap_accuracy.py --only hot       # variance: GAP on GFN2 500 K frames, tested on GFN2 1000 K frames
    python bench/gap_accuracy.py --only md        # µs/atom/step on periodic water boxes, beside BPNN
    python bench/gap_accuracy.py --only sparse    # fit time, model size, MD step cost against sparse points
    python bench/gap_accuracy.py --only pool      # pool-based active learning on the GP's σ vs random picks
    python bench/gap_accuracy.py --only water --hp zeta=2 --fit force_sigma=0.01   # a variant

Prints one table per part and, with ``--json FILE``, writes every row. One thread (``--threads``). What is measured is
the code's defaults unless ``--hp`` / ``--fit`` override them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WATER = SHARED / "h2o-pbe-svp-500K-nve.extxyz"
ETHANOL = SHARED / "ethanol-pbe-svp-500K.extxyz"


def _kv(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def accuracy(name: str, train, test, hp: dict, fit: dict) -> dict:
    """Fit on ``train``, evaluate on ``test`` (mean only)."""
    from mlpkit.potentials.registry import create_potential
    from mlpkit.validation.metrics import evaluate

    pot = create_potential("gap", train, **hp)
    t0 = time.perf_counter()
    pot.fit(train, **fit)
    seconds = time.perf_counter() - t0
    pot.variance = False
    t0 = time.perf_counter()
    metrics, _ = evaluate(pot, test)
    predict_ms = 1000 * (time.perf_counter() - t0) / len(test)
    return {
        "case": name,
        "n_train": len(train),
        "n_test": len(test),
        "energy_mae_meV_per_atom": 1000 * metrics["energy_mae_per_atom"],
        "energy_mae_meV_per_molecule": 1000 * metrics["energy_mae_per_atom"] * len(test[0]),
        "forces_mae_meV_per_A": 1000 * metrics["forces_mae"],
        "forces_rmse_meV_per_A": 1000 * metrics["forces_rmse"],
        "train_seconds": seconds,
        "timings": pot.metadata["timings"],
        "predict_ms_per_frame": predict_ms,
        "cutoff": pot.cutoff,
        "n_sparse": pot.metadata["n_sparse"],
        "n_features": pot.descriptor.n_features,
        "delta_eV": pot.delta,
        "hyperparameters": {k: v for k, v in pot.hyperparameters.items()},
        "fit_settings": pot.metadata["fit_settings"],
    }


def hot(hp: dict, fit: dict, n_train: int = 50) -> list[dict]:
    """GAP trained on GFN2-labelled 500 K Langevin frames of a water molecule; σ against the true error on unseen
    500 K frames (where the scale factor is fitted) and on a 1000 K Langevin run (GFN2 labels, mlpkit sampling)."""
    from mlpkit.potentials.registry import create_potential
    from mlpkit.testing import labelled_water
    from mlpkit.uncertainty.calibration import calibrate

    train = labelled_water(n_train, temperature=500.0, seed=0)
    calib = labelled_water(200, temperature=500.0, seed=1)
    test = labelled_water(200, temperature=1000.0, seed=2)
    pot = create_potential("gap", train, **hp)
    pot.fit(train, **fit)
    rows = []
    cal500 = calibrate(pot, calib)
    for name, images in (("500 K (unseen run)", calib), ("1000 K", test)):
        t0 = time.perf_counter()
        cal = calibrate(pot, images)
        ms = 1000 * (time.perf_counter() - t0) / len(images)
        err = cal.error_max
        rows.append(
            {
                "case": name,
                "n_train": n_train,
                "n_test": len(images),
                "spearman_config": cal.spearman_config,
                "spearman_atom": cal.spearman_atom,
                "scale_fitted_here": cal.scale,
                "scale_gaussian": cal.scale_gaussian,
                "scale_from_500K": cal500.scale,
                "mean_error_max_meV_per_A": 1000 * float(np.mean(err)),
                "mean_sigma_max_raw_meV_per_A": 1000 * float(np.mean(cal.sigma_max)),
                # calibrated σ (scale from the 500 K run) over true error, averaged over configurations
                "calibrated_over_true_mean": float(np.mean(cal500.scale * cal.sigma_max) / np.mean(err)),
                "calibrated_over_true_median_ratio": float(np.median(cal500.scale * cal.sigma_max / err)),
                "predict_with_variance_ms_per_frame": ms,
            }
        )
    return rows


def _labelled_boxes(n: int = 40) -> list:
    """``n`` GFN2-labelled 24-atom liquid-water boxes (bench/water_boxes.py), rattled by 0.05 Å."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from mlpkit.labelers import make_labeler
    from water_boxes import water_box

    labeler = make_labeler("gfn2")
    rng = np.random.default_rng(0)
    train = []
    for k in range(n):
        a = water_box(2, seed=100 + k)
        a.positions += rng.normal(0, 0.05, a.positions.shape)
        a.calc = labeler.calculator()
        e, f = a.get_potential_energy(), a.get_forces()
        a.calc = SinglePointCalculator(a, energy=e, forces=f)
        a.info["method"] = labeler.method
        train.append(a)
    return train


def _step_cost(pot, box, steps: int) -> tuple[float, float]:
    """(wall, CPU) µs per atom per velocity-Verlet step (0.5 fs) after one warm-up step."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    atoms = box.copy()
    atoms.calc = pot.calculator()
    dyn = VelocityVerlet(atoms, 0.5 * units.fs)
    dyn.run(1)  # warm-up (first neighbour list, caches)
    t0, c0 = time.perf_counter(), time.process_time()
    dyn.run(steps)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return 1e6 * wall / steps / len(atoms), 1e6 * cpu / steps / len(atoms)


def _model_mb(gap) -> float:
    return (sum(x.nbytes for x in gap.sparse) + gap.posterior_factor.nbytes + gap.nystrom_factor.nbytes) / 2**20


def md_cost(hp: dict, fit: dict, sizes=(5, 7), steps: int = 3) -> list[dict]:
    """µs/atom/step of velocity-Verlet MD on periodic water boxes: GAP with and without the variance, and BPNN.

    The GAP is trained on 40 GFN2-labelled 24-atom liquid-density boxes (cost does not depend on the weights, only
    on the sparse set: here every environment, 640 H and 320 O)."""
    from mlpkit.potentials.registry import create_potential
    from water_boxes import water_box

    train = _labelled_boxes()
    gap = create_potential("gap", train, **hp)
    t0 = time.perf_counter()
    gap.fit(train, **fit)
    fit_s = time.perf_counter() - t0
    bpnn = create_potential("bpnn", train)
    rows = []
    for n_side in sizes:
        box = water_box(n_side, seed=1)
        for name, pot, variance in (("gap + variance", gap, True), ("gap", gap, False), ("bpnn float64", bpnn, None)):
            if variance is not None:
                pot.variance = variance
            wall, cpu = _step_cost(pot, box, steps)
            is_gap = variance is not None
            rows.append(
                {
                    "case": name,
                    "atoms": len(box),
                    "us_per_atom_step": wall,
                    "cpu_us_per_atom_step": cpu,
                    "n_sparse": dict(zip(gap.species, gap.n_sparse, strict=True)) if is_gap else None,
                    "model_MB": _model_mb(gap) if is_gap else None,
                    "gap_fit_seconds": fit_s if is_gap else None,
                }
            )
    return rows


def sparse_scaling(hp: dict, fit: dict, n_sparse=(40, 120, 320, 640), steps: int = 3) -> list[dict]:
    """Fit time, model size and MD step cost (375-atom box, with and without variance) against sparse points."""
    from mlpkit.potentials.registry import create_potential
    from water_boxes import water_box

    train = _labelled_boxes()
    box = water_box(5, seed=1)
    rows = []
    for n in n_sparse:
        gap = create_potential("gap", train, **{**hp, "n_sparse": n})
        t0 = time.perf_counter()
        gap.fit(train, **fit)
        fit_s = time.perf_counter() - t0
        row = {"n_sparse": dict(zip(gap.species, gap.n_sparse, strict=True)), "M": sum(gap.n_sparse)}
        row.update({"fit_seconds": fit_s, "model_MB": _model_mb(gap)})
        for variance in (True, False):
            gap.variance = variance
            _, cpu = _step_cost(gap, box, steps)
            row["cpu_us_per_atom_step" + ("_variance" if variance else "")] = cpu
        rows.append(row)
    return rows


def pool_learning(hp: dict, fit: dict, seeds=(0, 1, 2, 3, 4), start: int = 5, batch: int = 5, budget: int = 60):
    """Pool-based active learning with the GP's variance alone, against random picks on the same label budget.

    Pool: 450 GFN2-labelled frames of one water molecule from Langevin runs at 500, 800 and 1000 K (labels revealed
    only when picked). Test: 200 frames of independent runs at 500 and 1000 K. Each seed starts from the same
    ``start`` random pool frames for every strategy; every round fits a GAP on the labels so far and adds
    ``batch`` frames: ``greedy`` (:meth:`GAPPotential.select`: largest max-atomic |σ_F|, the posterior updated
    after each pick), ``top`` (the ``batch`` largest σ at once) or ``random``."""
    from mlpkit.potentials.registry import create_potential
    from mlpkit.testing import labelled_water
    from mlpkit.validation.metrics import evaluate

    pool = [
        *labelled_water(150, temperature=500.0, seed=10),
        *labelled_water(150, temperature=800.0, seed=11),
        *labelled_water(150, temperature=1000.0, seed=12),
    ]
    test = [*labelled_water(100, temperature=500.0, seed=20), *labelled_water(100, temperature=1000.0, seed=21)]
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        first = list(rng.choice(len(pool), start, replace=False))
        for strategy in ("greedy", "top", "random"):
            picked = list(first)
            t0 = time.perf_counter()
            while True:
                train = [pool[i] for i in picked]
                pot = create_potential("gap", train, **hp)
                pot.fit(train, **fit)
                pot.variance = False
                metrics, _ = evaluate(pot, test)
                rows.append(
                    {
                        "seed": seed,
                        "strategy": strategy,
                        "labels": len(picked),
                        "forces_mae_meV_per_A": 1000 * metrics["forces_mae"],
                        "energy_mae_meV_per_atom": 1000 * metrics["energy_mae_per_atom"],
                        "seconds": time.perf_counter() - t0,
                    }
                )
                if len(picked) >= budget:
                    break
                rest = np.setdiff1d(np.arange(len(pool)), picked)
                if strategy == "greedy":
                    new = rest[pot.select([pool[i] for i in rest], batch)]
                elif strategy == "top":
                    pot.variance = True
                    score = pot.predict([pool[i] for i in rest]).score()
                    new = rest[np.argsort(-score)[:batch]]
                else:
                    new = rng.choice(rest, batch, replace=False)
                picked += [int(i) for i in new]
    return rows


def _pool_summary(rows: list[dict]) -> list[dict]:
    out = []
    for labels in sorted({r["labels"] for r in rows}):
        row = {"labels": labels}
        for strategy in ("greedy", "top", "random"):
            maes = [r["forces_mae_meV_per_A"] for r in rows if r["labels"] == labels and r["strategy"] == strategy]
            row[f"{strategy}_force_mae_mean"] = float(np.mean(maes))
            row[f"{strategy}_force_mae_std"] = float(np.std(maes))
        out.append(row)
    return out


def _table(rows: list[dict], keys: list[str]) -> str:
    lines = [" | ".join(keys)]
    for r in rows:
        lines.append(" | ".join(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["water", "ethanol", "hot", "md", "sparse", "pool"], action="append")
    parser.add_argument("--hp", nargs="*", default=[], help="hyperparameter overrides key=value")
    parser.add_argument("--fit", nargs="*", default=[], help="fit-setting overrides key=value")
    parser.add_argument("--ethanol-train", type=int, default=300, help="ethanol training frames (from frame 0)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))  # featomic's thread pool
    import torch

    torch.set_num_threads(args.threads)
    from ase.io import read

    hp, fit = _kv(args.hp), _kv(args.fit)
    parts = args.only or ["water", "ethanol", "hot", "md", "sparse", "pool"]
    results: dict[str, list[dict]] = {}
    acc_keys = ["case", "n_train", "energy_mae_meV_per_atom", "forces_mae_meV_per_A", "train_seconds", "n_sparse"]
    if "water" in parts:
        frames = read(WATER, index=":")
        results["water"] = [accuracy("water 0-49 → 100-299", frames[:50], frames[100:300], hp, fit)]
        print(_table(results["water"], acc_keys), flush=True)
    if "ethanol" in parts:
        frames = read(ETHANOL, index=":")
        n = args.ethanol_train
        results["ethanol"] = [accuracy(f"ethanol 0-{n - 1} → 300-449", frames[:n], frames[300:450], hp, fit)]
        print(_table(results["ethanol"], acc_keys), flush=True)
    if "hot" in parts:
        results["hot"] = hot(hp, fit)
        print(
            _table(
                results["hot"],
                [
                    "case",
                    "spearman_config",
                    "spearman_atom",
                    "scale_from_500K",
                    "scale_fitted_here",
                    "calibrated_over_true_mean",
                    "mean_error_max_meV_per_A",
                ],
            ),
            flush=True,
        )
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # water_boxes
    if "md" in parts:
        results["md"] = md_cost(hp, fit)
        print(_table(results["md"], ["case", "atoms", "us_per_atom_step", "cpu_us_per_atom_step", "n_sparse"]))
    if "sparse" in parts:
        results["sparse"] = sparse_scaling(hp, fit)
        print(_table(results["sparse"], list(results["sparse"][0])), flush=True)
    if "pool" in parts:
        results["pool"] = pool_learning(hp, fit)
        results["pool_summary"] = _pool_summary(results["pool"])
        print(_table(results["pool_summary"], list(results["pool_summary"][0])))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
