"""The issue's RDF bar: the MLP's radial distribution functions against the reference method's own MD of the same box
at the same conditions. From a project run directory: both run NVT (Langevin) from the equilibrated start
(``configs/start.extxyz``) at the same temperature and timestep; the first ``--skip`` steps are dropped; the partial
RDFs are compared by first-peak position (bar: within 0.05 Å) and height (bar: within 10 %).

    OMP_NUM_THREADS=1 python bench/liquid_rdf_vs_reference.py examples/liquid-water/run --method gfn2 \
        --temperature 300 --steps 4000 --skip 1000 --interval 4

4,000 GFN2-xTB steps of the 16-water box are ~2 CPU hours (docs/benchmarks/liquid-water.md), so the reference run is
kept and resumable: its frames go to ``--reference-dir`` (default
``bench/data/liquid-reference/<method>-<T>K-<dt>fs-seed<N>-<hash of the start>``, committed with the repository) as
numbered parts, flushed frame by frame; a killed run continues from its last frame (positions and momenta; the
thermostat's noise of a later part is seeded ``seed + part``) and a finished one is read back, so a better MLP is
compared against the same reference trajectory without recomputing it. ``--reference-only`` runs (or continues) the
reference MD alone, e.g. at ``nice 19`` in the background. CPU time (user + sys) is printed beside wall time.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from pathlib import Path

import numpy as np


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _md(start, calculator, args, *, steps: int, seed: int, trajectory=None, fresh: bool = True):
    from mlpkit.md.dynamics import run_md

    res = run_md(
        start, calculator, ensemble="nvt", temperature=args.temperature, timestep=args.timestep, steps=steps,
        friction=args.friction, interval=args.interval, seed=seed, trajectory=trajectory, progress=True,
        initial_velocities=fresh,
    )  # fmt: skip
    if res.stopped_because:
        raise SystemExit(f"MD stopped after {res.steps_done} steps: {res.stopped_because}")
    return res


def mlp_frames(start, calculator, args) -> tuple[list, float, float]:
    """Frames (global ``step`` in info) of the MLP's NVT run from ``start`` (``--mlp-steps``, default the
    reference's ``--steps``); (frames, wall s, CPU s)."""
    w, c = time.perf_counter(), _cpu()
    res = _md(start, calculator, args, steps=args.mlp_steps or args.steps, seed=args.seed)
    return res.frames, time.perf_counter() - w, _cpu() - c


def _read_part(path: Path) -> list:
    """Every complete frame of a part file (a run killed while writing leaves a partial last frame)."""
    from ase.io import iread

    frames = []
    try:
        for frame in iread(path, format="extxyz"):
            frames.append(frame)
    except Exception:  # a truncated last frame: keep the complete ones before it
        pass
    return frames


#: where reference trajectories are kept: in the repository (bench/data/liquid-reference/), so a trajectory that
#: took CPU hours survives the machine it was computed on and a later session continues it
REFERENCE_ROOT = Path(__file__).resolve().parent / "data" / "liquid-reference"


def reference_dir(start, args) -> Path:
    digest = hashlib.sha256(start.positions.tobytes() + start.cell.array.tobytes()).hexdigest()[:8]
    name = f"{args.method}-{args.temperature:g}K-{args.timestep:g}fs-seed{args.seed}-{digest}"
    return args.reference_dir or REFERENCE_ROOT / name


def reference_frames(start, args) -> tuple[list, float, float]:
    """The reference method's NVT frames from ``start`` (global ``step`` in info), computed once and kept in
    :func:`reference_dir` as parts ``part-KKK-from-SSSSSSS.extxyz`` (K: part, S: global step it starts from);
    continues a killed run from its last complete frame. (frames, wall s, CPU s) of this call."""
    from mlpkit.labelers import make_labeler

    out = reference_dir(start, args)
    out.mkdir(parents=True, exist_ok=True)
    frames: list = []
    parts = sorted(out.glob("part-*-from-*.extxyz"))
    for path in list(parts):
        offset = int(path.stem.rsplit("-", 1)[1])
        read = _read_part(path)
        if not read:  # killed before its first frame: nothing in it to continue from
            path.unlink()
            parts.remove(path)
            continue
        for f in read:
            f.info["step"] = offset + int(f.info["step"])
            frames.append(f)
    done = frames[-1].info["step"] if frames else 0
    w, c = time.perf_counter(), _cpu()
    if done < args.steps:
        k = int(parts[-1].name.split("-")[1]) + 1 if parts else 0  # after the last kept part
        path = out / f"part-{k:03d}-from-{done:07d}.extxyz"
        print(f"reference MD ({args.method}): steps {done}-{args.steps} into {path}")
        begin = frames[-1] if frames else start
        res = _md(begin, make_labeler(args.method).calculator(), args, steps=args.steps - done, seed=args.seed + k,
                  trajectory=path, fresh=not frames)  # fmt: skip
        for f in res.frames:
            f.info["step"] = done + int(f.info["step"])
        frames.extend(res.frames)
    return frames, time.perf_counter() - w, _cpu() - c


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
    ap.add_argument("--reference-dir", type=Path, help="where the reference trajectory is kept (see above)")
    ap.add_argument("--reference-only", action="store_true", help="run or continue the reference MD, then stop")
    ap.add_argument("--mlp-steps", type=int, help="steps of the MLP's run (default: --steps); the MLP is cheap, so a "
                    "longer run takes its RDF's noise out of the comparison")  # fmt: skip
    ap.add_argument("--test-frames", type=int, default=0, help="also label this many reference frames after --skip "
                    "(evenly spaced; kept beside the trajectory) and give the MLP's force error on them: the "
                    "equilibrated liquid, unlike the project's short test runs")  # fmt: skip
    ap.add_argument("--label-mlp-frames", type=int, default=0, help="also label this many frames of the MLP's run "
                    "after --skip with the reference method (kept in RUN/mlp-md-labelled-N-after-SKIP.extxyz): what "
                    "the potential gets wrong where its own MD goes (bench/liquid_force_components.py)")  # fmt: skip
    ap.add_argument("--blocks", type=int, default=3, help="consecutive blocks per trajectory for the O-O peak's "
                    "spread (the noise of a short run of a small box)")  # fmt: skip
    args = ap.parse_args()
    from ase.io import read

    from mlpkit.md.liquid import first_peak_height, partial_rdfs
    from mlpkit.potentials.registry import load_potential

    start = read(args.run_dir / "configs" / "start.extxyz")
    ref_all, ref_wall, ref_cpu = reference_frames(start, args)
    print(f"reference: {len(ref_all)} frames to step {ref_all[-1].info['step']}, this call {ref_cpu:.0f} s CPU "
          f"({ref_wall:.0f} s wall), kept in {reference_dir(start, args)}")  # fmt: skip
    if args.reference_only:
        return
    calc = load_potential(args.run_dir / "models" / "final").calculator()
    mlp_all, mlp_wall, mlp_cpu = mlp_frames(start, calc, args)
    ref = partial_rdfs([f for f in ref_all if f.info["step"] > args.skip])
    mlp = partial_rdfs([f for f in mlp_all if f.info["step"] > args.skip])
    print(
        f"{len(start)} atoms, NVT {args.temperature:g} K, reference {args.steps} x {args.timestep:g} fs, MLP "
        f"{args.mlp_steps or args.steps} steps, first {args.skip} steps of each dropped; MLP {mlp_cpu:.0f} s CPU "
        f"({mlp_wall:.0f} s wall)"
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

    ref_kept = [f for f in ref_all if f.info["step"] > args.skip]
    mlp_kept = [f for f in mlp_all if f.info["step"] > args.skip]
    print(f"\nmean kinetic temperature after the skip: reference {_mean_temperature(ref_kept):.1f} K, MLP "
          f"{_mean_temperature(mlp_kept):.1f} K")  # fmt: skip
    if args.test_frames:
        _test_on_reference(ref_kept, start, calc, args)
    if args.label_mlp_frames:
        path = args.run_dir / f"mlp-md-labelled-{args.label_mlp_frames}-after-{args.skip}.extxyz"
        _label_and_score(mlp_kept, args.label_mlp_frames, path, "mlp-md", calc, args, "frames of the MLP's own run")
    print(f"\nO-O first peak per block ({args.blocks} consecutive blocks of each run): position Å, height")
    for name, frames in (("reference", ref_kept), ("MLP", mlp_kept)):
        print(f"  {name}: " + ", ".join(f"{r:.3f} Å {h:.2f}" for r, h in _block_peaks(frames, args.blocks, "O-O")))


def _mean_temperature(frames: list) -> float:
    """K: the mean kinetic temperature of ``frames`` (from their momenta)."""
    return float(sum(f.get_temperature() for f in frames) / max(len(frames), 1))


def _test_on_reference(frames: list, start, calculator, args) -> None:
    """The MLP's force MAE on ``args.test_frames`` evenly spaced reference frames, labelled with the reference
    method once and kept in the reference directory (``labelled-<n>-after-<skip>.extxyz``)."""
    path = reference_dir(start, args) / f"labelled-{args.test_frames}-after-{args.skip}.extxyz"
    _label_and_score(frames, args.test_frames, path, f"reference-md-{args.temperature:g}K", calculator, args,
                     "equilibrated reference frames")  # fmt: skip


def _label_and_score(frames: list, n: int, path: Path, source: str, calculator, args, what: str) -> None:
    """Label ``n`` evenly spaced ``frames`` with the reference method (once: kept in ``path``) and print the MLP's
    force MAE on them."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from liquid_test_errors import force_errors
    from mlpkit.files import atomic_write_images, read_images
    from mlpkit.labelers import make_labeler

    if path.exists():
        labelled = read_images(path)
    else:
        ref_calc = make_labeler(args.method).calculator()
        pick = [frames[int(k)] for k in np.linspace(0, len(frames) - 1, n).round()]
        labelled = []
        for f in pick:
            a = f.copy()
            a.calc = ref_calc
            e, forces = a.get_potential_energy(), a.get_forces()
            a.calc = SinglePointCalculator(a, energy=e, forces=forces)
            a.info["source"] = source
            labelled.append(a)
        atomic_write_images(path, labelled)
    r, p = next(iter(force_errors(labelled, calculator).values()))
    rms, mae = float(np.sqrt(np.mean(r**2))), float(np.mean(np.abs(p - r)))
    print(
        f"MLP on {len(labelled)} {what} (steps > {args.skip}, {path}): force MAE "
        f"{1000 * mae:.1f} meV/Å, {100 * mae / rms:.2f} % of RMS {1000 * rms:.1f}"
    )


def _block_peaks(frames: list, n: int, pair: str) -> list[tuple[float, float]]:
    """(first peak position Å, height) of ``pair``'s RDF in each of ``n`` consecutive blocks of ``frames``."""
    from mlpkit.md.liquid import first_peak_height, partial_rdfs

    k = len(frames) // n
    out = []
    for i in range(n):
        rdf = partial_rdfs(frames[i * k : (i + 1) * k])[pair]
        out.append((rdf.first_peak, first_peak_height(rdf)))
    return out


if __name__ == "__main__":
    main()
