"""Zero-shot vs aligned vs fine-tuned CHGNet vs a BPNN from scratch, on the same few water labels.

Train/fine-tune on the first N of frames 0-49 (N = 100: frames 0-99) of ../shared/data/h2o-pbe-svp-500K-nve.extxyz
(PBE/def2-SVP), test on frames 100-299 and, with ``--nve``, on an independent 500 K NVE run made by
bench/universal_water_nve.py. Rows: CHGNet 0.3.0 zero-shot (raw: Materials Project's energy scale), zero-shot
aligned (per-element offsets fitted on the N labels, no training), fine-tuned on N (family defaults unless --fit),
and mlpkit's BPNN trained from scratch on the same N with its defaults. Energy MAE per atom, force MAE per Cartesian
component, wall time of the fit.

    python bench/universal_accuracy.py --n 10 25 50 100 --nve /tmp/universal-h2o-nve-seed11.extxyz \
        --test "1000 K"=/tmp/universal-h2o-1000K.extxyz --committee 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from ase.io import read

import mlpkit
from mlpkit.potentials import create_potential
from mlpkit.validation.metrics import evaluate

WATER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "h2o-pbe-svp-500K-nve.extxyz"


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[10, 25, 50])
    ap.add_argument("--nve", help="extxyz of an independent labelled run (bench/universal_water_nve.py)")
    ap.add_argument("--test", nargs="*", default=[], help="more test sets as NAME=FILE.extxyz")
    ap.add_argument("--fit", nargs="*", default=[], help="chgnet fit settings key=value (default: family defaults)")
    ap.add_argument("--no-bpnn", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--committee",
        type=int,
        default=0,
        help="also fine-tune a committee of this many members (seeds 0..K-1, "
        "bootstrap resamples) on the largest N and report how its force spread tracks the force error",
    )
    ap.add_argument("--only-committee", action="store_true", help="skip the table, run the committee only")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fit = {k: _value(v) for k, v in (kv.split("=", 1) for kv in args.fit)}

    frames = read(WATER, ":")
    tests = {"frames 100-299": frames[100:300]}
    if args.nve:
        tests["independent NVE"] = read(args.nve, ":")
    for item in args.test:
        name, _, file = item.partition("=")
        tests[name] = read(file, ":")
    rows = []

    def record(model: str, n: int | None, pot, seconds: float | None, extra: dict | None = None) -> None:
        row = {"model": model, "n": n, "fit_seconds": seconds, **(extra or {})}
        for name, images in tests.items():
            m, _ = evaluate(pot, images)
            row[name] = {
                "energy_mae_mev_atom": 1e3 * m["energy_mae_per_atom"],
                "forces_mae_mev_a": 1e3 * m["forces_mae"],
            }
        rows.append(row)
        cells = "  ".join(
            f"{k}: E {v['energy_mae_mev_atom']:.2f} F {v['forces_mae_mev_a']:.1f}" for k, v in row.items() if k in tests
        )
        print(f"{model:<28} n={n!s:<4} {cells}  fit {seconds or 0:.0f} s {extra or ''}", flush=True)

    if not args.only_committee:
        record("CHGNet 0.3.0 zero-shot raw", None, mlpkit.load("chgnet"), None)
    for n in [] if args.only_committee else args.n:
        train = frames[:n]
        pot = create_potential("chgnet", train)
        t = time.perf_counter()
        pot.fit(train, epochs=0)
        record("CHGNet zero-shot aligned", n, pot, time.perf_counter() - t)
        pot = create_potential("chgnet", train)
        t = time.perf_counter()
        h = pot.fit(train, progress=False, **fit)
        extra = {"epochs_run": len(h.epochs), "best_epoch": h.best_epoch, "settings": pot.fine_tune}
        record("CHGNet fine-tuned", n, pot, time.perf_counter() - t, {"epochs_run": len(h.epochs)})
        rows[-1].update(extra)
        if not args.no_bpnn:
            pot = create_potential("bpnn", train)
            t = time.perf_counter()
            h = pot.fit(train, progress=False)
            record("BPNN from scratch", n, pot, time.perf_counter() - t, {"epochs_run": len(h.epochs)})
    if args.committee:
        rows.append(committee_row(frames[: max(args.n)], tests, args.committee, fit))
    if args.json:
        Path(args.json).write_text(json.dumps({"tests": {k: len(v) for k, v in tests.items()}, "rows": rows}, indent=1))


def committee_row(train, tests, n_members: int, fit: dict) -> dict:
    """Fine-tune ``n_members`` CHGNets on bootstrap resamples (Committee.fit) and compare spread with error."""
    import numpy as np

    from mlpkit.uncertainty.committee import Committee

    members = [create_potential("chgnet", train) for _ in range(n_members)]
    committee = Committee(members)
    t = time.perf_counter()
    committee.fit(train, progress=False, **fit)
    row = {
        "model": f"committee of {n_members} fine-tuned CHGNet",
        "n": len(train),
        "fit_seconds": time.perf_counter() - t,
    }
    for name, images in tests.items():
        pred = committee.predict(images)
        m, _ = evaluate(committee, images)
        err = np.array([np.abs(f - a.get_forces()).max() for f, a in zip(pred.forces, images, strict=True)])
        spread = pred.max_force_deviation()
        row[name] = {
            "energy_mae_mev_atom": 1e3 * m["energy_mae_per_atom"],
            "forces_mae_mev_a": 1e3 * m["forces_mae"],
            "mean_max_force_std_mev_a": 1e3 * float(spread.mean()),
            "mean_max_force_error_mev_a": 1e3 * float(err.mean()),
            "spearman_spread_vs_error": float(_spearman(spread, err)),
        }
        print(f"{row['model']} n={len(train)} {name}: {row[name]}", flush=True)
    return row


def _spearman(a, b) -> float:
    import numpy as np

    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


if __name__ == "__main__":
    main()
