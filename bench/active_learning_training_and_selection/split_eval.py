"""Test force MAE (meV/Å) of saved committees on the 500 K and the 1000 K halves of a run's test set."""

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
    pot = load_potential(run / model)
    out = []
    for s, frames in halves.items():
        m, _ = evaluate(pot, frames)
        out.append(f"{s} {1000 * m['forces_mae']:.1f}")
    print(model, "|", ", ".join(out))
