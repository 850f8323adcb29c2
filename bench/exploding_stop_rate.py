"""How often sane MD of one water molecule trips the "exploding dynamics" stop: the old rule against the new one.

Runs Langevin walkers the way active learning's exploration does (Maxwell-Boltzmann velocities at the walker's
temperature, centre of mass and rotation removed, FixCom, friction 0.01/fs) with the stop switched off, records the
kinetic and potential energy of every step, and applies both rules afterwards to the same trajectories:

* old: instantaneous temperature above 5x the target (mlpkit before this benchmark);
* new: :class:`mlpkit.md.runaway.RunawayCheck` (thermal tail for the degrees of freedom + energy the start released).

Starts: ``minimum`` (ASE's water geometry), ``md:T`` (frames 25 fs apart of a Langevin run at T K with the same
potential: hot, distorted starts like the labelled configurations walkers start from), or extxyz files (e.g. an
active-learning run's ``initial.extxyz`` and ``iter-*/selected.extxyz``). ``--timestep 4`` makes genuinely
exploding runs (the integrator pumps energy in), which both rules must stop.

    python bench/exploding_stop_rate.py --potential gfn2 --starts minimum md:1000 --temperatures 300 1000
    python bench/exploding_stop_rate.py --potential RUN/iter-004/model \
        --starts RUN/initial.extxyz RUN/iter-*/selected.extxyz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _calculator(spec: str):
    if Path(spec).is_dir():
        from mlpkit.potentials.registry import load_potential

        return load_potential(spec).calculator()
    from mlpkit.sampling.md import as_calculator

    return as_calculator(spec)


def _water():
    from ase.build import molecule

    a = molecule("H2O")
    a.center(vacuum=5.0)
    return a


def _starts(spec: str, calc_spec: str, seed: int) -> list:
    from ase.io import read

    from mlpkit.md.dynamics import run_md

    if spec == "minimum":
        return [_water()]
    if spec.startswith("md:"):
        t = float(spec[3:])
        res = run_md(_water(), _calculator(calc_spec), temperature=t, timestep=0.5, steps=2050, interval=50, seed=seed)
        return [f for f in res.frames if f.info["step"] >= 250]  # after ~100 fs of equilibration: 37 frames
    return read(spec, ":")


def _walker(start, calc, temperature, timestep, steps, friction, seed):
    """(ekin (eV), epot (eV), temperatures (K), each (steps run,); start energy eV; n_dof; why the run ended early)."""
    import tempfile

    from ase.calculators.calculator import CalculationFailed
    from ase.io import read

    from mlpkit.md.dynamics import run_md

    a = start.copy()
    a.calc = calc
    e0 = float(a.get_potential_energy())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "walker.extxyz"  # every step, so a calculator that gives up keeps what came before
        try:
            reason = run_md(
                start,
                calc,
                temperature=temperature,
                timestep=timestep,
                steps=steps,
                friction=friction,
                interval=1,
                seed=seed,
                trajectory=path,
                max_temperature=1e12,  # no temperature stop: both rules are applied afterwards
                allow_bond_breaking=True,  # nor a bond-graph one: a blow-up runs until atoms collapse or SCF fails
            ).stopped_because
        except CalculationFailed as exc:  # GFN2's SCF gives up on a blown-up geometry
            reason = f"calculator failed: {exc}"
        frames = read(path, ":") if path.stat().st_size else []
    frames = [f for f in frames if not str(f.info.get("stopped_because", ""))]
    ekin = np.array([f.get_kinetic_energy() for f in frames])
    epot = np.array([f.info["mlp_energy"] for f in frames])
    temps = np.array([f.info["temperature"] for f in frames])
    n_dof = 3 * len(start) - 3  # ASE's count under run_md's Langevin, which fixes the centre of mass (FixCom)
    return ekin, epot, temps, e0, n_dof, reason


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--potential", default="gfn2", help="a cheap method (gfn2) or a saved model directory")
    ap.add_argument("--starts", nargs="+", default=["minimum", "md:1000"])
    ap.add_argument("--temperatures", nargs="+", type=float, default=[300.0, 1000.0])
    ap.add_argument("--walkers", type=int, default=20, help="walkers per start kind and temperature")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--timestep", type=float, default=1.0, help="fs (active learning's exploration: 1.0)")
    ap.add_argument("--friction", type=float, default=0.01, help="1/fs")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from mlpkit.md.runaway import RunawayCheck

    calc = _calculator(args.potential)
    rng = np.random.default_rng(args.seed)
    kinds: dict[str, list] = {}
    for spec in args.starts:
        if spec in ("minimum",) or spec.startswith("md:"):
            kinds[spec] = _starts(spec, args.potential, args.seed)
        else:  # files: one start kind for all of them together
            kinds.setdefault("files", []).extend(_starts(spec, args.potential, args.seed))
    print(
        f"potential {args.potential}; {args.walkers} walkers x {args.steps} steps of {args.timestep:g} fs per row, "
        f"friction {args.friction:g}/fs\n"
    )
    head = (
        f"{'starts':<10}{'T (K)':>7}{'walkers':>8}{'old stops':>10}{'new stops':>10}{'old step rate':>14}"
        f"{'first stop old/new':>19}{'max T (K)':>10}{'start excess (eV)':>18}{'other stops':>12}{'s':>6}"
    )
    print(head)
    for kind, starts in kinds.items():
        for t in args.temperatures:
            t0 = time.perf_counter()
            old_stops = new_stops = geometry = 0
            old_steps = all_steps = 0
            first_old, first_new, max_t, excess = [], [], [], []
            for _ in range(args.walkers):
                start = starts[int(rng.integers(len(starts)))]
                ekin, epot, temps, e0, n_dof, reason = _walker(
                    start, calc, t, args.timestep, args.steps, args.friction, int(rng.integers(2**31))
                )
                geometry += bool(reason)
                old = temps > 5.0 * t
                old_steps += int(old.sum())
                all_steps += len(temps)
                if old.any():
                    old_stops += 1
                    first_old.append(int(np.argmax(old)) + 1)
                check = RunawayCheck(n_dof=n_dof, temperature=t, n_atoms=len(start), start_energy=e0)
                new = [bool(check.check(k, v)) for k, v in zip(ekin, epot, strict=True)]
                if any(new):
                    new_stops += 1
                    first_new.append(new.index(True) + 1)
                max_t.append(float(temps.max()) if len(temps) else float("nan"))
                excess.append(e0 - float(epot.min()) if len(epot) else float("nan"))
            first = "/".join(f"{int(np.median(x))}" if x else "-" for x in (first_old, first_new))
            print(
                f"{kind:<10}{t:>7g}{args.walkers:>8}{old_stops:>10}{new_stops:>10}"
                f"{old_steps / max(all_steps, 1):>14.2e}"
                f"{first:>19}{np.nanmax(max_t):>10.0f}{np.nanmedian(excess):>11.2f} (max{np.nanmax(excess):>5.2f})"
                f"{geometry:>12}{time.perf_counter() - t0:>6.0f}",
                flush=True,
            )
    print(
        "\nold/new stops: walkers the rule would have stopped; old step rate: share of steps above 5x the target; "
        "first stop: median step of the first stop by each rule; start excess: potential energy of the start above "
        "the lowest the walker reached (median, max); other stops: atoms collapsed or the calculator failed (before "
        "either rule)"
    )


if __name__ == "__main__":
    main()
