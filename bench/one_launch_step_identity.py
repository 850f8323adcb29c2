"""Stress check: the one-launch BPNN step (step_kernels) against the separate launches, bit for bit, many times.

Each round builds fresh potentials (float64 and float32 on 2 threads, float64 on 3: the configurations of
``tests/test_kernel_threads.py::test_one_launch_step_equals_separate_launches``) and evaluates the same periodic
water box twice with each path. Compared bit for bit: energies, forces, stress, and the workspace arrays the
stages hand on (features G, dE/dG, dE/dM); fused against separate, and each path against its own first round
(so a nondeterministic *separate* path shows up too). ``--boxes N`` adds N other boxes per round (other sizes,
seeds, rattles and activations). Run it beside load to shake out timing-dependent faults, e.g.::

    nice -n 19 python -c 'while 1: pass' &
    for k in $(seq 60); do NUMBA_NUM_THREADS=3 python bench/one_launch_step_identity.py --rounds 1; done

(a fresh process each time: numba's cache and the thread pool start cold, as in the test). Prints one line per
difference (which quantity, how large, on how many rows) and a summary line; exit status 1 if anything differed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mlpkit.potentials.bpnn import BPNNPotential, network
from test_kernels import _water_box

CONFIGS = (("float64", 2), ("float32", 2), ("float64", 3))
ACTIVATIONS = ("silu", "tanh", "softplus", "celu", "gelu")


def snapshot(pot: BPNNPotential, pred) -> dict[str, np.ndarray]:
    """The prediction and the stage arrays the evaluation left in the potential's workspace (copies)."""
    ws = pot._workspace._arrays
    return {
        "energy": np.array(pred.energy),
        "forces": pred.forces[0].copy(),
        "stress": pred.stress.copy(),
        "G": ws["features"].copy(),
        "dE/dG": ws["grad_features"].copy(),
        "dE/dM": ws["moments"].copy(),
    }


def differences(a: dict, b: dict) -> list[str]:
    out = []
    for key in a:
        if np.array_equal(a[key], b[key]):
            continue
        d = np.abs(a[key].astype(np.float64) - b[key].astype(np.float64))
        rows = np.unique(np.nonzero(d.reshape(d.shape[0], -1) > 0)[0])
        scale = max(float(np.abs(a[key]).max()), 1e-300)
        rel = d.max() / scale
        out.append(f"{key}: max |diff| {d.max():.3e} (relative {rel:.1e}), {rows.size} of {d.shape[0]} rows")
    return out


def evaluate(atoms, dtype: str, threads: int, seed: int, activation: str) -> dict[bool, list[dict]]:
    """Fused, then separate, twice each, on a fresh potential (the first fused call also computes the pair
    vectors inside its launch, as in MD)."""
    torch.set_num_threads(threads)
    pot = BPNNPotential(("H", "O"), hidden=[16, 16], init_seed=seed, dtype=dtype, activation=activation)
    out: dict[bool, list[dict]] = {}
    for fused in (True, False):
        network.FUSED_STEP = fused
        out[fused] = [snapshot(pot, pot.predict([atoms], stress=True)) for _ in range(2)]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=1, help="repeats of the test's three configurations")
    p.add_argument("--boxes", type=int, default=0, help="other boxes per round (sizes 6-8 molecules a side)")
    opts = p.parse_args()
    box = _water_box(7, seed=16)
    refs: dict = {}
    n_cmp = n_bad = 0
    t0 = time.time()
    for r in range(opts.rounds):
        cases = [(box, dtype, threads, 8, "silu", "test box") for dtype, threads in CONFIGS]
        for k in range(opts.boxes):
            seed = 100 + r * opts.boxes + k
            atoms = _water_box(6 + k % 3, seed=seed)
            atoms.rattle(0.02 * (k % 4), seed=seed)
            dtype, threads = CONFIGS[k % len(CONFIGS)]
            cases.append((atoms, dtype, threads, seed, ACTIVATIONS[k % len(ACTIVATIONS)], f"box seed {seed}"))
        for atoms, dtype, threads, seed, activation, label in cases:
            out = evaluate(atoms, dtype, threads, seed, activation)
            key = (label, dtype, threads)
            ref = refs.setdefault(key, out) if label == "test box" else out
            for k in range(2):
                pairs = [(f"fused[{k}] vs separate[{k}]", out[True][k], out[False][k])]
                if ref is not out:  # the test box after round 0: each path against its own first round
                    pairs += [
                        (f"fused[{k}] vs fused[{k}] of round 0", out[True][k], ref[True][k]),
                        (f"separate[{k}] vs separate[{k}] of round 0", out[False][k], ref[False][k]),
                    ]
                for what, a, b in pairs:
                    n_cmp += 1
                    diff = differences(a, b)
                    if diff:
                        n_bad += 1
                        print(f"round {r}, {label}, {dtype}, {threads} threads: {what} DIFFERS", *diff, sep="\n  ")
    print(f"{opts.rounds} rounds, {n_cmp} comparisons in {time.time() - t0:.0f} s: {n_bad} differ", flush=True)
    return 1 if n_bad else 0


if __name__ == "__main__":
    sys.exit(main())
