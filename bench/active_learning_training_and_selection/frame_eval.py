"""Per-frame mean |ΔF| (meV/Å) of saved committees on a run's test set: median, top-5 share of the MAE, worst frames."""

import sys
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
from mlpkit.files import read_images
from mlpkit.potentials.registry import load_potential

run = Path(sys.argv[1])
test = read_images(run / "test-set.extxyz")
ref = [a.get_forces() for a in test]
for model in sys.argv[2:]:
    pot = load_potential(run / model)
    pred = pot.predict(test)
    err = np.array([1000 * np.mean(np.abs(fp - f)) for fp, f in zip(pred.forces, ref, strict=True)])
    top = np.argsort(err)[::-1][:5]
    worst = ", ".join(f"{test[i].info.get('source')}#{i} {err[i]:.0f}" for i in top)
    print(
        f"{model}: MAE {err.mean():.1f}, median {np.median(err):.1f}, top-5 frames carry "
        f"{err[top].sum() / err.sum():.0%}: " + worst
    )
