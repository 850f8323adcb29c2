"""The first committee's calibration on the test set, offline, for a run that did not record it (or is gone).

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/active_learning_uncertainty_sources/first_round_calibration.py \
        bench/active_learning_initial_set/fps-s0.yaml runs/water-mixed-s0 runs/water-fps-s0

Trains what CONFIG's ``committee`` section describes, exactly as the loop's iteration 0 does (same seed, the same
train/valid split of the 20 initial labels), on the initial labels of LABELS_RUN (an AL run of the same seed whose
initial set was chosen in the same descriptor space: a committee whose first family is bpnn), and calibrates it on
LABELS_RUN's test set: Spearman of σ (max atomic force spread per frame) vs the true max atomic force error. Writes
``OUT/first-round-calibration.json`` (read by collect.py) and prints it.

Every source on the same 20 labels (the cleanest calibration comparison: same data, same test set)::

    bench/active_learning_uncertainty_sources/first_round.sh          # SOURCE-on-LABELS for 4 label sets
    python bench/active_learning_uncertainty_sources/first_round_calibration.py --table /work/uq-firstround

``--table DIR`` prints one row per source (directories ``DIR/SOURCE-on-LABELS``): Spearman per label set, its mean,
and the first committee's test force MAE.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mlpkit.config.active_learning import ActiveLearningConfig
from mlpkit.data.dataset import Dataset
from mlpkit.files import atomic_write_json, read_images
from mlpkit.uncertainty.calibration import calibrate
from mlpkit.workflows.active_learning.metrics import evaluate_committee
from mlpkit.workflows.active_learning.train import train_step


def main(config: str, labels_run: str, out_dir: str) -> dict:
    cfg = ActiveLearningConfig.from_yaml(config)
    run = Path(labels_run)
    db = Dataset(run / "dataset.db")
    # an AL run holds labels of one method (its reference); to_atoms refuses a mixture
    rows = {split: db.to_atoms(split=split, source="initial") for split in ("train", "valid")}
    test = read_images(run / "test-set.extxyz")
    t0 = time.perf_counter()
    model = train_step(cfg, rows["train"], rows["valid"], None, cfg.seed)
    seconds = time.perf_counter() - t0
    cal = calibrate(model, test)
    result = {
        "config": config,
        "labels_from": str(run),
        "n_train": len(rows["train"]),
        "n_valid": len(rows["valid"]),
        "train_seconds": seconds,
        "test": evaluate_committee(model, test),
        "calibration_test": cal.to_dict(),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "first-round-calibration.json", result)
    return result


def table(root: str) -> None:
    import json

    found: dict[str, dict[str, dict]] = {}
    for path in sorted(Path(root).glob("*-on-*/first-round-calibration.json")):
        source, _, labels = path.parent.name.partition("-on-")
        found.setdefault(source, {})[labels] = json.loads(path.read_text())
    label_sets = sorted({k for v in found.values() for k in v})
    print("| source | " + " | ".join(f"Spearman on {k}'s 20 labels" for k in label_sets) + " | mean | test force MAE "
          "(meV/Å), per label set |")  # fmt: skip
    print("|---" * (len(label_sets) + 3) + "|")
    for source, runs in found.items():
        rho = [runs[k]["calibration_test"]["spearman_config"] if k in runs else None for k in label_sets]
        mae = [f"{1000 * runs[k]['test']['forces_mae']:.1f}" if k in runs else "–" for k in label_sets]
        known = [r for r in rho if r is not None]
        mean = f"{sum(known) / len(known):.2f}" if known else "–"
        cells = " | ".join("–" if r is None else f"{r:.2f}" for r in rho)
        print(f"| {source} | {cells} | {mean} | {', '.join(mae)} |")


if __name__ == "__main__":
    if sys.argv[1] == "--table":
        table(sys.argv[2])
        sys.exit()
    r = main(*sys.argv[1:4])
    print(
        f"{r['config']}: {r['n_train']} + {r['n_valid']} initial labels of {r['labels_from']}, test force MAE "
        f"{1000 * r['test']['forces_mae']:.1f} meV/Å, Spearman σ vs error "
        f"{r['calibration_test']['spearman_config']:.2f}"
        f" (train {r['train_seconds']:.0f} s)"
    )
