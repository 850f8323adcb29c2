"""Accuracy of the MACE family on the shared PBE/def2-SVP data, with its learning curve (test error vs wall time).

    python bench/mace_accuracy.py --only water                 # the bar: train frames 0-49, test frames 100-299
    python bench/mace_accuracy.py --only ethanol               # train frames 0-299, test frames 300-449
    python bench/mace_accuracy.py --only water --hp channels=16 --fit epochs=200   # a variant

Prints one table (energy MAE meV/atom and meV/molecule, force MAE meV/Å, training wall time) and, every
``--curve-every`` epochs, a learning-curve point: epoch, training wall seconds (evaluation excluded), test force
and energy MAE. ``--json FILE`` writes everything. One thread unless ``--threads``. The code's defaults are what is
measured unless ``--hp`` / ``--fit`` override them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WATER = SHARED / "h2o-pbe-svp-500K-nve.extxyz"
ETHANOL = SHARED / "ethanol-pbe-svp-500K.extxyz"
CASES = {"water": (WATER, slice(0, 50), slice(100, 300)), "ethanol": (ETHANOL, slice(0, 300), slice(300, 450))}


def _kv(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run_case(name: str, hp: dict, fit: dict, curve_every: int, save: str | None, log) -> dict:
    from ase.io import read

    from mlpkit.potentials.registry import create_potential
    from mlpkit.validation.metrics import evaluate

    path, train_slice, test_slice = CASES[name]
    frames = read(path, index=":")
    train, test = frames[train_slice], frames[test_slice]
    pot = create_potential("mace", train, **hp)
    curve: list[dict] = []
    eval_seconds = [0.0]
    t0, c0 = time.perf_counter(), time.process_time()
    eval_cpu = [0.0]

    def callback(epoch: int, record: dict) -> None:
        if epoch % curve_every:
            return
        t = time.perf_counter()
        c = time.process_time()
        trained = t - t0 - eval_seconds[0]  # wall time of training so far, earlier evaluations excluded
        trained_cpu = c - c0 - eval_cpu[0]  # the same in CPU seconds of this process (load-independent)
        m, _ = evaluate(pot, test)
        eval_seconds[0] += time.perf_counter() - t
        eval_cpu[0] += time.process_time() - c
        point = {
            "epoch": epoch,
            "train_seconds": trained,
            "train_cpu_seconds": trained_cpu,
            "lr": record["lr"],
            "valid_forces_mae_meV_per_A": 1000 * record.get("valid_forces_mae", float("nan")),
            "test_forces_mae_meV_per_A": 1000 * m["forces_mae"],
            "test_energy_mae_meV_per_atom": 1000 * m["energy_mae_per_atom"],
        }
        curve.append(point)
        log(
            f"  {name} epoch {epoch:5d}  {point['train_seconds']:8.0f} s (CPU {trained_cpu:7.0f} s)  "
            f"test F {point['test_forces_mae_meV_per_A']:7.2f} "
            f"meV/Å  E {point['test_energy_mae_meV_per_atom']:7.3f} meV/atom  lr {record['lr']:.2e}"
        )

    history = pot.fit(train, **{"progress": False, "callback": callback, **fit})
    seconds = time.perf_counter() - t0 - eval_seconds[0]
    cpu_seconds = time.process_time() - c0 - eval_cpu[0]
    metrics, _ = evaluate(pot, test)
    if save:
        pot.save(save)
    n_atoms = len(test[0])
    return {
        "case": name,
        "n_train": len(train),
        "n_test": len(test),
        "energy_mae_meV_per_atom": 1000 * metrics["energy_mae_per_atom"],
        "energy_mae_meV_per_molecule": 1000 * metrics["energy_mae_per_atom"] * n_atoms,
        "forces_mae_meV_per_A": 1000 * metrics["forces_mae"],
        "forces_rmse_meV_per_A": 1000 * metrics["forces_rmse"],
        "train_seconds": seconds,
        "train_cpu_seconds": cpu_seconds,
        "epochs_run": len(history.epochs),
        "parameters": sum(p.numel() for p in pot.module.parameters()),
        "hyperparameters": pot.hyperparameters,
        "fit_settings": pot.metadata["fit_settings"],
        "curve": curve,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(CASES), action="append", help="case(s) to run (default: all)")
    ap.add_argument("--hp", nargs="*", default=[], help="hyperparameter overrides key=value (JSON values)")
    ap.add_argument("--fit", nargs="*", default=[], help="fit setting overrides key=value (JSON values)")
    ap.add_argument("--curve-every", type=int, default=25, help="epochs between learning-curve points")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save", help="directory to save the (last case's) model in")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    hp, fit = _kv(args.hp), _kv(args.fit)
    rows = []
    for name in args.only or sorted(CASES):
        rows.append(run_case(name, hp, fit, args.curve_every, args.save, lambda s: print(s, flush=True)))
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
    print(
        f"\n{'case':8s} {'train':>5s} {'test':>5s} {'E meV/atom':>10s} {'E meV/mol':>10s} {'F MAE meV/Å':>12s} "
        f"{'F RMSE':>8s} {'train s':>8s} {'CPU s':>8s} {'epochs':>6s}"
    )
    for r in rows:
        print(
            f"{r['case']:8s} {r['n_train']:5d} {r['n_test']:5d} {r['energy_mae_meV_per_atom']:10.3f} "
            f"{r['energy_mae_meV_per_molecule']:10.2f} {r['forces_mae_meV_per_A']:12.2f} "
            f"{r['forces_rmse_meV_per_A']:8.2f} {r['train_seconds']:8.0f} {r['train_cpu_seconds']:8.0f} "
            f"{r['epochs_run']:6d}"
        )


if __name__ == "__main__":
    main()
