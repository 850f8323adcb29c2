"""What flattens the liquid's O-O shell? One BPNN member refitted from scratch on a finished liquid project's labels
(train + valid) with a given network, descriptor and cutoff; its force MAE on the project's test frames per
temperature, and the O-O first peak of its NVT MD from the project's start box (to hold against the reference
method's own MD: `bench/liquid_rdf_vs_reference.py`, GFN2-xTB 2.83 Å, g 3.36 for the liquid example).

    python bench/liquid_rdf_refit.py /tmp/liquid-ex2/run --variant "24x24 r8 a4" --cutoffs 4.5 6.0
    python bench/liquid_rdf_refit.py RUN --cutoffs 4.5 --extra-count 30 \
        --extra bench/data/liquid-reference/<dir>/labelled-60-after-1000.extxyz   # data or model form?

One member, init seed 0, 600 epochs, stress weight 10, last weights; MD: NVT 300 K, 0.5 fs, friction 0.01/fs,
21,000 steps with the first 1,000 dropped, frames every 4 steps. Each fitted member is saved to
``RUN/refit-<variant or family>[-fw<W>]-<cutoff>[-extra<N>-<file>]`` (a model directory).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from liquid_test_errors import force_errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="a finished liquid project run directory")
    ap.add_argument("--variant", default="24x24 r8 a4", help="hidden layers, radial and angular functions")
    ap.add_argument("--family", default="bpnn", help="another family (its defaults but the cutoff and --hp/--fit; "
                    "--variant and --epochs are the BPNN's): does the model form set the shell?")  # fmt: skip
    ap.add_argument("--hp", nargs="*", default=[], help="KEY=JSON hyperparameters of another family")
    ap.add_argument("--fit", nargs="*", default=[], help="KEY=JSON fit settings of another family")
    ap.add_argument("--cutoffs", type=float, nargs="+", default=[4.5, 6.0], help="Å")
    ap.add_argument("--epochs", type=int, default=600)
    ap.add_argument("--steps", type=int, default=21000)
    ap.add_argument("--force-weight", type=float, default=1.0, help="the loss's force weight (energy weight 1, "
                    "per atom): lower puts more weight on energy differences between boxes")  # fmt: skip
    ap.add_argument("--extra", type=Path, help="labelled frames added to the training boxes (a diagnostic: e.g. "
                    "the reference method's own equilibrated liquid, to see whether the data or the model form "
                    "limits the shell)")  # fmt: skip
    ap.add_argument("--extra-count", type=int, help="only the first N frames of --extra (default all)")
    args = ap.parse_args()
    from ase.io import read

    from mlpkit.data import Dataset
    from mlpkit.md.dynamics import run_md
    from mlpkit.md.liquid import first_peak_height, partial_rdfs
    from mlpkit.potentials import create_potential

    parts = args.variant.split()
    hidden = [int(h) for h in parts[0].split("x")]
    n = {p[0]: int(p[1:]) for p in parts[1:]}
    data = Dataset(args.run_dir / "dataset.db")
    train = data.to_atoms(split="train") + data.to_atoms(split="valid")
    test = data.to_atoms(split="test")
    tag = ""
    if args.extra:
        from mlpkit.files import read_images

        extra = read_images(args.extra)[: args.extra_count]
        train += extra
        tag = f"-extra{len(extra)}-{args.extra.stem}"
        print(f"+ {len(extra)} frames of {args.extra}")
    start = read(args.run_dir / "configs" / "start.extxyz")
    what = f"{args.variant}, {args.epochs} epochs" if args.family == "bpnn" else f"{args.family}, its defaults"
    print(f"{len(train)} training boxes, {len(test)} test frames; {what}")
    print("| cutoff Å | test F MAE per temperature (meV/Å) | O-O peak (Å) | O-O height | MD stopped | wall s |")
    print("|---|---|---|---|---|---|")
    for cutoff in args.cutoffs:
        t0 = time.perf_counter()
        if args.family == "bpnn":
            pot = create_potential(
                "bpnn", train, cutoff=cutoff, hidden=hidden, n_radial=n["r"], n_angular=n["a"], init_seed=0
            )
            pot.fit(train, stress_weight=10.0, force_weight=args.force_weight, epochs=args.epochs, keep="last",
                    progress=False)  # fmt: skip
            name = f"{parts[0]}-r{n['r']}-a{n['a']}" + ("" if args.force_weight == 1 else f"-fw{args.force_weight:g}")
        else:
            hp = {k: json.loads(v) for k, v in (x.split("=", 1) for x in args.hp)}
            fit = {k: json.loads(v) for k, v in (x.split("=", 1) for x in args.fit)}
            key = "r_max" if args.family == "mace" else "cutoff"
            pot = create_potential(args.family, train, **{key: cutoff}, **hp)
            pot.fit(train, **{"stress_weight": 10.0, **fit})
            name = args.family
        pot.save(args.run_dir / f"refit-{name}-{cutoff:g}{tag}")
        calc = pot.calculator()
        errors = force_errors(test, calc)
        mae = ", ".join(f"{k} {1000 * np.abs(p - r).mean():.1f}" for k, (r, p) in sorted(errors.items()))
        res = run_md(start, calc, ensemble="nvt", temperature=300, timestep=0.5, steps=args.steps, friction=0.01,
                     interval=4, seed=0)  # fmt: skip
        rdf = partial_rdfs([f for f in res.frames if f.info["step"] > 1000])["O-O"]
        print(
            f"| {cutoff:g} | {mae} | {rdf.first_peak:.3f} | {first_peak_height(rdf):.2f} | "
            f"{res.stopped_because or 'no'} | {time.perf_counter() - t0:.0f} |"
        )


if __name__ == "__main__":
    main()
