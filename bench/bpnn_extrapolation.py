"""How a potential trained on narrow data behaves outside it: errors and the largest forces on hotter runs.

Trains on frames 0-49 of ../shared/data/h2o-pbe-svp-500K-nve.extxyz (the source's protocol: one NVE run at 500 K)
and scores frames 100-299 of that run (inside the data) and independent equilibrated Langevin runs at 300 K and
1000 K labelled with the same PySCF PBE/def2-SVP (bench/data/, made by bench/data/make_langevin_sets.sh). Each
variant is one cure of wild extrapolation; the table says what it costs inside the data and buys outside.

    OMP_NUM_THREADS=1 python bench/bpnn_extrapolation.py [--variants default,floor,delta-gfn2] [--seeds 0,1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase.io import read

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "h2o-pbe-svp-500K-nve.extxyz"
DATA = ROOT / "bench" / "data"

VARIANTS = {
    "default": ("bpnn", {}),
    "no-floor": ("bpnn", {"feature_std_floor": 0.0}),  # the default before the floor
    "keep-best": ("bpnn", {}),  # with fit keep=best (best validation epoch, early stopping)
    "small": ("bpnn", {"hidden": [16, 16], "feature_std_floor": 0.0}),
    "floor-0.05": ("bpnn", {"feature_std_floor": 0.05}),
    "floor-0.02": ("bpnn", {"feature_std_floor": 0.02}),
    "floor-0.1": ("bpnn", {"feature_std_floor": 0.1}),
    "small+floor": ("bpnn", {"hidden": [16, 16], "feature_std_floor": 0.02}),
    "delta-zbl": ("delta", {"baseline": "zbl"}),
    "delta-gfn2": ("delta", {"baseline": "gfn2"}),
    "delta-gfn2+floor": ("delta", {"baseline": "gfn2", "learned_hyperparameters": {"feature_std_floor": 0.05}}),
}


def score(pot, frames) -> dict:
    from mlpkit.validation.metrics import evaluate

    metrics, _ = evaluate(pot, frames)
    pred = pot.predict(frames)
    fmax = max(float(np.abs(f).max()) for f in pred.forces)
    ref_max = max(float(np.abs(a.get_forces()).max()) for a in frames)
    return {
        "force_mae": metrics["forces_mae"],
        "force_max_error": metrics["forces_max_error"],
        "energy_mae_per_atom": metrics["energy_mae_per_atom"],
        "max_predicted_force": fmax,
        "max_reference_force": ref_max,
    }


def main() -> None:
    import torch

    from mlpkit.potentials import create_potential

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--json", default=None)
    opts = ap.parse_args()
    torch.set_num_threads(1)
    frames = read(SHARED, index=":")
    train, inside = frames[:50], frames[100:300]
    sets = {"500K NVE frames 100-299": inside}
    for temp in (300, 1000):
        path = DATA / f"h2o-pbe-svp-{temp}K-langevin.extxyz"
        sets[f"{temp}K Langevin"] = read(path, index=":")
    rows = []
    for name in opts.variants.split(","):
        family, hp = VARIANTS[name]
        for seed in (int(s) for s in opts.seeds.split(",")):
            pot = create_potential(family, train, **hp)
            fit = {"seed": seed, "progress": False}
            if name == "keep-best":
                fit["keep"] = "best"
            start = time.perf_counter()
            pot.fit(train, **fit)
            seconds = time.perf_counter() - start
            row = {"variant": name, "seed": seed, "train_s": seconds}
            for label, data in sets.items():
                row[label] = score(pot, data)
            rows.append(row)
            cells = "  ".join(
                f"{label}: {1000 * r['force_mae']:.1f} meV/Å (max |F| {r['max_predicted_force']:.1f})"
                for label, r in ((k, row[k]) for k in sets)
            )
            print(f"{name:>18} seed {seed}  {seconds:6.1f} s  {cells}", flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
