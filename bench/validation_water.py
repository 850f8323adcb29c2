"""Validation benchmark: the whole checklist on the water BPNN, with real PySCF PBE/def2-SVP frequencies.

Trains a BPNN on frames 0-49 of ../shared/data/h2o-pbe-svp-500K-nve.extxyz (unless --model names a saved one),
validates it on frames 100-299, and prints the time of every check, the verdicts and the frequency comparison.

    OMP_NUM_THREADS=2 python bench/validation_water.py --out /tmp/valbench/report [--model models/water-bpnn]

Run it twice with the same --out to see the reference-frequency cache at work (second run: no DFT).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "h2o-pbe-svp-500K-nve.extxyz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="saved model directory (default: train one, saved under --out)")
    ap.add_argument("--out", type=Path, default=Path("reports/water-bpnn"))
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--nve-steps", type=int, default=2000)
    ap.add_argument("--no-reference", action="store_true", help="skip the PySCF frequencies")
    args = ap.parse_args()

    import torch
    from ase.io import read

    from mlpkit.labelers import make_labeler
    from mlpkit.potentials.registry import create_potential, load_potential
    from mlpkit.validation import ValidationSettings, validate

    torch.set_num_threads(2)
    frames = read(args.data, ":")
    train, test = frames[0:50], frames[100:300]
    if args.model is None:
        t0 = time.perf_counter()
        pot = create_potential("bpnn", train)
        pot.fit(train, progress=False)
        model_dir = args.out.parent / (args.out.name + "-model")
        pot.save(model_dir)
        print(f"trained BPNN in {time.perf_counter() - t0:.0f} s -> {model_dir}")
    else:
        pot = load_potential(args.model)
    reference = None if args.no_reference else make_labeler("pyscf", xc="PBE", basis="def2-SVP")
    settings = ValidationSettings(nve_steps=args.nve_steps)
    t0 = time.perf_counter()
    report = validate(pot, train, test, out_dir=args.out, settings=settings, reference=reference, progress=False)
    total = time.perf_counter() - t0

    print(f"\n{'step':<16}{'seconds':>9}")
    for key, seconds in report.timings.items():
        print(f"{key:<16}{seconds:>9.1f}")
    print(f"{'total':<16}{total:>9.1f}\n")
    for row in report.checks:
        print(f"{row.status:<5} {row.title}: {row.value}")
    vib = report.extra.get("vibrations", {})
    if vib.get("reference"):
        print(f"\n{'mode':<6}{'BPNN':>10}{'PBE/def2-SVP':>14}{'diff':>8}   (cm^-1)")
        for i, (m, r) in enumerate(zip(vib["model"]["frequencies"], vib["reference"]["frequencies"], strict=True)):
            print(f"{i + 1:<6}{m:>10.1f}{r:>14.1f}{m - r:>+8.1f}")
        ref = vib["reference"]
        print(
            f"reference: {ref['relax_steps']} BFGS steps + Hessian, {ref['seconds']:.1f} s"
            + (" (from cache)" if vib.get("reference_cached") else "")
        )
    print(f"\nreport: {report.html_path}")
    print(json.dumps(report.counts))


if __name__ == "__main__":
    main()
