"""Interleaved A/B in one process: the descriptor's backward by autograd vs the ``fast`` path, same model and pairs.

    python bench/ab_fast_path.py float64 1029 3000 10125 31944

Prints CPU µs/atom of descriptor + networks + backward + forces (one thread, median of 4 interleaved steps).
Needs a version of mlpkit with ``SymmetryFunctions.forward(..., fast=...)`` (bench/fast_path.patch).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mlpkit.descriptors.graph import collate, graph_arrays
from mlpkit.potentials.registry import create_potential
from water_boxes import n_side_for, water_box


def main(dtype: str, sizes: list[int]) -> None:
    torch.set_num_threads(1)
    for size in sizes:
        atoms = water_box(n_side_for(size))
        n = len(atoms)
        pot = create_potential("bpnn", [atoms], dtype=dtype)
        pairs = graph_arrays(atoms, pot.species, pot.cutoff)
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(5):
            for fast in (False, True):
                start = time.process_time()
                batch = collate([pairs], pot.dtype)
                batch.vectors.requires_grad_(True)
                energy = pot.module(batch, fast=fast).sum()
                (grad,) = torch.autograd.grad(energy, batch.vectors)
                forces = torch.zeros(n, 3, dtype=grad.dtype)
                forces.index_add_(0, batch.centers, grad).index_add_(0, batch.neighbors, -grad)
                times[fast].append(time.process_time() - start)
        slow, quick = (statistics.median(times[k][1:]) / n * 1e6 for k in (False, True))
        print(
            f"{dtype} {n:6d} atoms: autograd {slow:6.1f}  fast {quick:6.1f} µs/atom  speed-up {slow / quick:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2:]])
