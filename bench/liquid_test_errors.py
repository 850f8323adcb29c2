"""The issue's force bar per temperature: a finished project run's final potential on its independent test frames,
force MAE against the RMS reference force component of each temperature's frames (bar: MAE ≤ 5 % of RMS).

    python bench/liquid_test_errors.py examples/liquid-water/run

Reads ``configs/test-labelled.extxyz`` (the reference labels, ``info["source"]`` = ``test-md-<T>K``) and
``models/final``; prints one row per temperature.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="a finished project run directory")
    args = ap.parse_args()
    from ase.io import read

    from mlpkit.potentials.registry import load_potential

    frames = read(args.run_dir / "configs" / "test-labelled.extxyz", ":")
    calc = load_potential(args.run_dir / "models" / "final").calculator()
    by_source: dict[str, tuple[list, list]] = {}
    for frame in frames:
        ref, pred = by_source.setdefault(frame.info.get("source", "test"), ([], []))
        ref.append(frame.get_forces().ravel())
        mlp = frame.copy()
        mlp.calc = calc
        pred.append(mlp.get_forces().ravel())
    print("| test frames | frames | force components | RMS reference (meV/Å) | MAE (meV/Å) | MAE / RMS | bar ≤ 5 % |")
    print("|---|---|---|---|---|---|---|")
    for source, (ref, pred) in sorted(by_source.items()):
        r, p = np.concatenate(ref), np.concatenate(pred)
        rms, mae = float(np.sqrt(np.mean(r**2))), float(np.mean(np.abs(p - r)))
        print(
            f"| {source} | {len(ref)} | {r.size} | {1000 * rms:.1f} | {1000 * mae:.1f} | {100 * mae / rms:.2f} % | "
            f"{'met' if mae <= 0.05 * rms else 'not met'} |"
        )


if __name__ == "__main__":
    main()
