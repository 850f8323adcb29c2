"""Accuracy of the Behler-Parrinello potential on the shared PBE/def2-SVP data, and its training time.

    python bench/bench_bpnn_accuracy.py                  # everything (water bar, learning curve, ethanol)
    python bench/bench_bpnn_accuracy.py --only water     # the bar: train frames 0-49, test frames 100-299
    python bench/bench_bpnn_accuracy.py --only curve     # 25/50/100/200 frames of 0-199, test 200-299
    python bench/bench_bpnn_accuracy.py --only ethanol   # train frames 0-299, test 300-449
    python bench/bench_bpnn_accuracy.py --only water --hp hidden=[32,32] --fit force_weight=0.1   # a variant

Prints one table (energy MAE meV/atom, force MAE meV/Å, training wall time) and writes it as JSON with
``--json``. Uses 2 threads (``--threads``). The defaults of the code are what is measured unless ``--hp`` /
``--fit`` override them.
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


def _kv(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run_case(name: str, train, test, hp: dict, fit: dict) -> dict:
    from mlpkit.potentials.registry import create_potential
    from mlpkit.validation.metrics import evaluate

    pot = create_potential("bpnn", train, **hp)
    t0 = time.perf_counter()
    history = pot.fit(train, **{"progress": False, **fit})
    seconds = time.perf_counter() - t0
    metrics, _ = evaluate(pot, test)
    n_atoms = len(test[0])
    row = {
        "case": name,
        "n_train": len(train),
        "n_test": len(test),
        "energy_mae_meV_per_atom": 1000 * metrics["energy_mae_per_atom"],
        "energy_mae_meV_per_molecule": 1000 * metrics["energy_mae_per_atom"] * n_atoms,
        "forces_mae_meV_per_A": 1000 * metrics["forces_mae"],
        "forces_rmse_meV_per_A": 1000 * metrics["forces_rmse"],
        "train_seconds": seconds,
        "epochs_run": len(history.epochs),
        "best_epoch": history.best_epoch,
        "stopped_because": history.stopped_because,
        "cutoff": pot.cutoff,
        "n_features": pot.module.descriptor.n_features,
    }
    print(
        f"{name:<22} {len(train):>5} {len(test):>5} {row['energy_mae_meV_per_atom']:>10.4f} "
        f"{row['energy_mae_meV_per_molecule']:>10.3f} {row['forces_mae_meV_per_A']:>9.2f} {seconds:>8.1f} "
        f"{len(history.epochs):>6}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["water", "curve", "ethanol"], action="append")
    parser.add_argument("--hp", nargs="*", default=[], help="hyperparameter overrides key=value (JSON values)")
    parser.add_argument("--fit", nargs="*", default=[], help="fit-setting overrides key=value (JSON values)")
    parser.add_argument("--ethanol-fit", nargs="*", default=[], help="extra fit overrides for ethanol only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    from ase.io import read

    torch.set_num_threads(args.threads)
    hp, fit = _kv(args.hp), _kv(args.fit)
    only = set(args.only or ["water", "curve", "ethanol"])
    print(f"hyperparameters {hp or 'defaults'}; fit settings {fit or 'defaults'}; {args.threads} threads")
    print(
        f"{'case':<22} {'train':>5} {'test':>5} {'E meV/at':>10} {'E meV/mol':>10} {'F meV/Å':>9} "
        f"{'train s':>8} {'epochs':>6}"
    )
    rows = []
    if only & {"water", "curve"}:
        water = read(WATER, index=":")
        if "water" in only:
            rows.append(run_case("water 0-49 / 100-299", water[:50], water[100:300], hp, fit))
        if "curve" in only:
            for n in (25, 50, 100, 200):
                rows.append(run_case(f"water curve n={n}", water[:n], water[200:300], hp, fit))
    if "ethanol" in only:
        ethanol = read(ETHANOL, index=":")
        rows.append(
            run_case("ethanol 0-299 / 300-449", ethanol[:300], ethanol[300:450], hp, {**fit, **_kv(args.ethanol_fit)})
        )
    if args.json:
        args.json.write_text(json.dumps({"hyperparameters": hp, "fit": fit, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
