"""The issue's RDF bar: the MLP's radial distribution functions against the reference method's own MD of the same box
at the same conditions. From a project run directory: both run NVT (Langevin) from the equilibrated start
(``configs/start.extxyz``) at the same temperature, timestep and seed; the first ``--skip`` steps are dropped; the
partial RDFs are compared by first-peak position (bar: within 0.05 Å) and height (bar: within 10 %).

    OMP_NUM_THREADS=1 python bench/liquid_rdf_vs_reference.py examples/liquid-water/run --method gfn2 \
        --temperature 300 --steps 4000 --skip 1000 --interval 4

(4,000 GFN2-xTB steps of the 16-water box are ~2 CPU hours: docs/benchmarks/liquid-water.md.) CPU time (user + sys)
is printed beside wall time.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def rdfs_of_md(start, calculator, args) -> tuple[dict, float, float]:
    """Partial RDFs of an NVT run of ``calculator`` from ``start``; (rdfs, wall s, CPU s)."""
    from mlpkit.md.dynamics import run_md
    from mlpkit.md.liquid import partial_rdfs

    w, c = time.perf_counter(), _cpu()
    res = run_md(
        start, calculator, ensemble="nvt", temperature=args.temperature, timestep=args.timestep, steps=args.steps,
        friction=args.friction, interval=args.interval, seed=args.seed,
    )  # fmt: skip
    frames = [f for f in res.frames if f.info["step"] > args.skip]
    if res.stopped_because or not frames:
        raise SystemExit(f"MD stopped after {res.steps_done} steps: {res.stopped_because}")
    return partial_rdfs(frames), time.perf_counter() - w, _cpu() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="a finished project run directory (models/final, configs/start.extxyz)")
    ap.add_argument("--method", default="gfn2", help="the reference method (its default options)")
    ap.add_argument("--temperature", type=float, default=300.0)
    ap.add_argument("--timestep", type=float, default=0.5)
    ap.add_argument("--friction", type=float, default=0.01)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--skip", type=int, default=1000, help="equilibration steps left out of the RDFs")
    ap.add_argument("--interval", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from ase.io import read

    from mlpkit.labelers import make_labeler
    from mlpkit.md.liquid import first_peak_height
    from mlpkit.potentials.registry import load_potential

    start = read(args.run_dir / "configs" / "start.extxyz")
    mlp, mlp_wall, mlp_cpu = rdfs_of_md(start, load_potential(args.run_dir / "models" / "final").calculator(), args)
    ref, ref_wall, ref_cpu = rdfs_of_md(start, make_labeler(args.method).calculator(), args)
    print(
        f"{len(start)} atoms, NVT {args.temperature:g} K, {args.steps} x {args.timestep:g} fs, first {args.skip} steps "
        f"dropped; MLP {mlp_cpu:.0f} s CPU ({mlp_wall:.0f} s wall), {args.method} {ref_cpu:.0f} s CPU "
        f"({ref_wall:.0f} s wall)"
    )
    print("\n| pair | peak ref (Å) | peak MLP (Å) | shift (Å) | height ref | height MLP | height ratio | bar met |")
    print("|---|---|---|---|---|---|---|---|")
    for pair, r in ref.items():
        m = mlp[pair]
        shift = m.first_peak - r.first_peak
        h_ref, h_mlp = first_peak_height(r), first_peak_height(m)
        ok = abs(shift) <= 0.05 and abs(h_mlp / h_ref - 1) <= 0.10
        print(
            f"| {pair} | {r.first_peak:.3f} | {m.first_peak:.3f} | {shift:+.3f} | {h_ref:.2f} | {h_mlp:.2f} | "
            f"{h_mlp / h_ref:.3f} | {'yes' if ok else 'no'} |"
        )


if __name__ == "__main__":
    main()
