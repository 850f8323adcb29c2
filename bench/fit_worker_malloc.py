"""CPU of one BPNN member's fit in a spawned fitting worker, with Dask's MALLOC_TRIM_THRESHOLD_=65536 inherited from
this process's environment (as Dask's Nanny leaves it after labelling) and with mlpkit's worker environment, which
strips it (``mlpkit.uncertainty.parallel_fit.worker_spawn_environment``). Data: the labelled boxes of a liquid-water
run directory (``RUN/dataset.db``, at least 65 labelled boxes: train + valid splits).

    python bench/fit_worker_malloc.py RUN_DIR --epochs 10
"""

from __future__ import annotations

import argparse
import contextlib
import os

from mlpkit.uncertainty.parallel_fit import spawn_pool, worker_spawn_environment


def job(run_dir: str, epochs: int) -> tuple[float, float]:
    """(user s, sys s) of ``epochs`` epochs of a 24x24 BPNN on 52 train + 13 valid boxes, after a 2-epoch warm-up."""
    from mlpkit.data import Dataset
    from mlpkit.potentials import create_potential

    data = Dataset(os.path.join(run_dir, "dataset.db"))
    boxes = data.to_atoms(split="train") + data.to_atoms(split="valid")
    if len(boxes) < 65:
        raise SystemExit(f"{run_dir}: {len(boxes)} labelled boxes, 65 needed")
    train, valid = boxes[:52], boxes[52:65]
    pot = create_potential("bpnn", train, cutoff=4.5, hidden=[24, 24], n_radial=8, n_angular=4, init_seed=0)
    settings = dict(stress_weight=10.0, batch_size=4, keep="last", progress=False)
    pot.fit(train, valid, epochs=2, **settings)  # warm-up: kernels compiled, allocator settled
    t = os.times()
    pot.fit(train, valid, epochs=epochs, **settings)
    t2 = os.times()
    return t2.user - t.user, t2.system - t.system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    os.environ["MALLOC_TRIM_THRESHOLD_"] = "65536"  # what Dask's Nanny writes into the parent
    print("| worker environment | user s | sys s | CPU s |\n|---|---|---|---|")
    for label, ctx in (("MALLOC_TRIM_THRESHOLD_ inherited", contextlib.nullcontext()),
                       ("stripped (mlpkit)", worker_spawn_environment())):  # fmt: skip
        pool = spawn_pool(2)  # one thread per worker, as a committee fit on 2 cores
        with ctx:
            future = pool.submit(job, args.run_dir, args.epochs)
        user, sys_ = future.result()
        pool.shutdown()
        print(f"| {label} | {user:.1f} | {sys_:.1f} | {user + sys_:.1f} |", flush=True)


if __name__ == "__main__":
    main()
