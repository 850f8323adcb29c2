import time

import torch

torch.set_num_threads(1)
from ase.io import read

from mlpkit.potentials.registry import create_potential

fr = read("../shared/data/ethanol-pbe-svp-500K.extxyz", index=":")
tr = fr[:35]
pot = create_potential("bpnn", tr)
t = time.perf_counter()
pot.fit(tr, epochs=10, progress=False, valid_fraction=0.2)
dt = time.perf_counter() - t
print(f"ethanol: 1 member, 35 frames (28 train), 10 epochs: {dt:.1f} s -> {dt / 10 / 28 * 1000:.2f} ms per frame-epoch")
w = read("runs/water/test-set.extxyz", index=":")[:35]
pot = create_potential("bpnn", w)
t = time.perf_counter()
pot.fit(w, epochs=10, progress=False, valid_fraction=0.2)
dt = time.perf_counter() - t
print(f"water: 1 member, 35 frames, 10 epochs: {dt:.1f} s -> {dt / 10 / 28 * 1000:.2f} ms per frame-epoch")
