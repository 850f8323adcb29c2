"""Per-member test force MAE (meV/Å) on the 500 K / 1000 K halves, and each member's kept-epoch training force MAE."""

import sys
from pathlib import Path

import torch

torch.set_num_threads(1)
from mlpkit.files import read_images
from mlpkit.potentials.registry import load_potential
from mlpkit.validation.metrics import evaluate

run = Path(sys.argv[1])
test = read_images(run / "test-set.extxyz")
halves = {s: [a for a in test if a.info.get("source") == s] for s in ("test-500K", "test-1000K")}
for model in sys.argv[2:]:
    com = load_potential(run / model)
    for k, m in enumerate(com.members):
        res = [f"{s} {1000 * evaluate(m, fr)[0]['forces_mae']:.1f}" for s, fr in halves.items()]
        md = m.metadata
        print(
            model,
            k,
            ", ".join(res),
            "| kept epoch",
            md.get("best_epoch"),
            "train F MAE",
            round(1000 * md.get("metrics", {}).get("train_forces_mae", float("nan")), 1),
            "valid F MAE",
            round(1000 * md.get("metrics", {}).get("valid_forces_mae", float("nan")), 1),
        )
