"""The issue's force bar per temperature: a finished project run's final potential on its independent test frames,
force MAE against the RMS reference force component of each temperature's frames (bar: MAE ≤ 5 % of RMS).

    python bench/liquid_test_errors.py examples/liquid-water/run

Reads ``configs/test-labelled.extxyz`` (the reference labels, ``info["source"]`` = ``test-md-<T>K``) and
``models/final``; prints one row per temperature.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np


def force_errors(frames: list, calculator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per ``info["source"]`` of the labelled ``frames``: (reference, predicted) force components, eV/Å, flat."""
    out: dict[str, tuple[list, list]] = {}
    for frame in frames:
        ref, pred = out.setdefault(frame.info.get("source", "test"), ([], []))
        ref.append(frame.get_forces().ravel())
        mlp = frame.copy()
        mlp.calc = calculator
        pred.append(mlp.get_forces().ravel())
    return {k: (np.concatenate(r), np.concatenate(p)) for k, (r, p) in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="a finished project run directory")
    args = ap.parse_args()
    from ase.io import read

    from mlpkit.potentials.registry import load_potential

    frames = read(args.run_dir / "configs" / "test-labelled.extxyz", ":")
    calc = load_potential(args.run_dir / "models" / "final").calculator()
    counts = Counter(frame.info.get("source", "test") for frame in frames)
    print("| test frames | frames | force components | RMS reference (meV/Å) | MAE (meV/Å) | MAE / RMS | bar ≤ 5 % |")
    print("|---|---|---|---|---|---|---|")
    for source, (r, p) in sorted(force_errors(frames, calc).items()):
        rms, mae = float(np.sqrt(np.mean(r**2))), float(np.mean(np.abs(p - r)))
        print(
            f"| {source} | {counts[source]} | {r.size} | {1000 * rms:.1f} | {1000 * mae:.1f} | "
            f"{100 * mae / rms:.2f} % | {'met' if mae <= 0.05 * rms else 'not met'} |"
        )


if __name__ == "__main__":
    main()
