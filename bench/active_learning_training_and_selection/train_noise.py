"""Offline check of committee training noise: fixed labelled sets (initial + random frames of a run's baseline),
committees trained cold with different settings and seeds, test force MAE (meV/Å) on the run's test set."""

import itertools
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)
from mlpkit.data.dataset import Dataset
from mlpkit.files import read_images
from mlpkit.uncertainty.model_spec import train_committee
from mlpkit.validation.metrics import evaluate

run = Path(sys.argv[1])
test = read_images(run / "test-set.extxyz")
db = Dataset(run / "baseline" / "baseline.db")
method = "pyscf:PBE/def2-SVP"
rows = {s: db.to_atoms(method=method, split=s) for s in ("train", "valid")}
settings = {
    "A bootstrap, keep last": dict(bootstrap=True, fit={"epochs": 300, "keep": "last"}),
    "B no bootstrap, keep last": dict(bootstrap=False, fit={"epochs": 300, "keep": "last"}),
    "C bootstrap, keep best p100": dict(bootstrap=True, fit={"epochs": 300, "patience": 100}),
}
order = ["initial"] + [f"random-{j}" for j in range(1, 20)]
for n_src, (name, st), seed in itertools.product([2, 4], settings.items(), [0, 1000]):
    srcs = set(order[:n_src])
    train = [a for a in rows["train"] if a.info.get("source") in srcs]
    valid = [a for a in rows["valid"] if a.info.get("source") in srcs]
    t = time.perf_counter()
    com = train_committee(train, valid, n_members=4, bootstrap=st["bootstrap"], seed=seed, progress=False, **st["fit"])
    m, _ = evaluate(com, test)
    mem = [1000 * evaluate(x, test)[0]["forces_mae"] for x in com.members]
    print(
        f"{len(train) + len(valid)} labels | {name} | seed {seed} | committee {1000 * m['forces_mae']:.1f} | "
        f"members {', '.join(f'{v:.0f}' for v in mem)} | {time.perf_counter() - t:.0f} s",
        flush=True,
    )
