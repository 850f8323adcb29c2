"""Labelling throughput: N water configurations with real PySCF PBE/def2-SVP, 1 vs 2 Dask workers.

    python bench/bench_labelling.py                   # 50 configurations, 1 and 2 workers
    python bench/bench_labelling.py --runs 1 2 1x1    # also 1 worker with 1 OpenMP thread
    python bench/bench_labelling.py --n 20 --runs 0 1 2

The geometries are every k-th frame of the shared reference file (../shared/data/h2o-pbe-svp-500K-nve.extxyz),
so the labels can also be checked against the reference energies. Each run labels into a fresh store through
``mlpkit.execution.label_configurations`` (the same path as ``mlpkit label``); the wall time includes starting
the local Dask cluster. A run ``N`` uses N workers with mlpkit's default threads (cores // N each); ``NxT`` forces
T OpenMP threads per calculation; ``0`` is the in-process loop without Dask.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WATER = HERE.parent.parent / "shared" / "data" / "h2o-pbe-svp-500K-nve.extxyz"


def run(images, workers: int, threads: int | None) -> dict:
    from mlpkit.data import Dataset
    from mlpkit.execution import label_configurations, worker_environment
    from mlpkit.labelers import make_labeler

    labeler = make_labeler("pyscf", xc="PBE", basis="def2-SVP", threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        ds = Dataset(Path(tmp) / "bench.db")
        start = time.perf_counter()
        report = label_configurations(images, labeler, ds, source="bench", workers=workers, progress=False)
        wall = time.perf_counter() - start
        labelled = ds.to_atoms()
        compute = np.array([a.info["seconds"] for a in labelled])
    ref = {round(float(a.positions.sum()), 6): a.get_potential_energy() for a in images}
    de = max(abs(a.get_potential_energy() - ref[round(float(a.positions.sum()), 6)]) for a in labelled)
    per_worker_threads = threads or int(worker_environment(max(workers, 1))["OMP_NUM_THREADS"])
    return {
        "workers": workers,
        "threads": per_worker_threads,
        "labelled": report.labelled,
        "failed": report.failed,
        "wall": wall,
        "per_label": wall / len(images),
        "compute": float(compute.mean()),
        "max_de": de,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50, help="number of configurations (default 50)")
    parser.add_argument("--runs", nargs="+", default=["1", "2"], help="N workers, or NxT (T threads each)")
    parser.add_argument("--data", type=Path, default=WATER, help="extxyz with water geometries")
    args = parser.parse_args()

    from ase.io import read
    from rich.console import Console
    from rich.table import Table

    frames = read(args.data, ":")
    step = max(1, len(frames) // args.n)
    images = frames[::step][: args.n]
    results = []
    for spec in args.runs:
        w_text, _, t_text = spec.partition("x")
        w = int(w_text)
        # workers=0 runs in this process: give PySCF the cores the Dask workers would share
        threads = int(t_text) if t_text else (os.cpu_count() or 1) if w == 0 else None
        results.append(run(images, w, threads))
        r = results[-1]
        print(f"workers={w}: {r['wall']:.1f} s wall, {r['labelled']} labelled, {r['failed']} failed", flush=True)

    base = results[0]
    table = Table(
        title=f"labelling {len(images)} H2O configurations, PySCF PBE/def2-SVP "
        f"({platform.node()}, {os.cpu_count()} cores)"
    )
    for col in (
        "workers",
        "BLAS/OMP threads each",
        "wall (s)",
        "s per label (wall)",
        "compute s per label",
        "speed-up vs first row",
        "max |ΔE| vs reference (eV)",
    ):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            str(r["workers"]) + (" (no Dask)" if r["workers"] == 0 else ""),
            str(r["threads"]),
            f"{r['wall']:.1f}",
            f"{r['per_label']:.2f}",
            f"{r['compute']:.2f}",
            f"{base['wall'] / r['wall']:.2f}x",
            f"{r['max_de']:.1e}",
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
