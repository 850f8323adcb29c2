"""Exploration: several MD walkers driven by the committee mean, watched by the uncertainty bounds.

Walkers start from configurations of the dataset (drawn with the iteration's seed), are spread over the
temperatures, and stop early when their calibrated uncertainty reaches the upper trust bound or the dynamics
go unphysical. Every step's uncertainty is kept, so the fraction of untrusted exploration can be measured
per MD step, not just per recorded frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.files import atomic_write_images, atomic_write_json
from mlpkit.md.dynamics import UncertaintyWatchdog, run_md
from mlpkit.uncertainty.bias import UncertaintyBiasedCalculator
from mlpkit.workflows.active_learning.context import ITER_SEED_STRIDE
from mlpkit.workflows.engine import Step


@dataclass
class ExplorationResult:
    """frames: every recorded frame plus every step the watchdog flagged, with ``info`` keys ``walker``,
    ``temperature``, ``uncertainty`` (calibrated, eV/Å). walkers: one small dict per walker.
    untrusted_fraction: share of the MD steps with u ≥ lower (a stopped walker restarts; steps it could not run
    after ``max_restarts`` count as untrusted); candidate_fraction: share with lower ≤ u < upper."""

    frames: list[Atoms]
    walkers: list[dict] = field(default_factory=list)
    untrusted_fraction: float = 0.0
    candidate_fraction: float = 0.0
    steps_planned: int = 0

    def to_dict(self) -> dict:
        return {
            "n_frames": len(self.frames),
            "untrusted_fraction": self.untrusted_fraction,
            "candidate_fraction": self.candidate_fraction,
            "steps_planned": self.steps_planned,
            "walkers": self.walkers,
        }


def explore(
    potential,
    starts: Sequence[Atoms],
    *,
    temperatures: Sequence[float],
    walkers: int,
    steps: int,
    timestep: float,
    friction: float,
    ensemble: str,
    interval: int,
    lower: float,
    upper: float,
    scale: float = 1.0,
    seed: int = 0,
    out_dir: str | Path | None = None,
    allow_bond_breaking: bool = False,
    progress: bool = False,
    on_walker=None,
    max_restarts: int = 20,
    bias: float = 0.0,
    bias_width: float = 0.01,
    pressure: float = 1.0,
    barostat_time: float = 1000.0,
) -> ExplorationResult:
    """Run ``walkers`` walkers per temperature for ``steps`` steps each with ``potential``'s calculator.

    starts: configurations to start from; walker k starts from a seeded random choice among them.
    out_dir: if given, each walker segment's trajectory goes to ``walker-TK-k-segment.extxyz`` there.
    max_restarts: how often a stopped walker is restarted within its step budget.
    bias, bias_width: depth A (eV) and width B (eV/√atom) of uncertainty-driven MD (:mod:`mlpkit.uncertainty.bias`,
        needs a committee); bias 0 runs on the committee mean.
    on_walker: optional callback(walker_index, n_walkers, info_dict) after each walker (progress display).
    pressure, barostat_time: bar and fs, the barostat of ensemble 'npt' (periodic cells; walkers' densities vary).
    """
    rng = np.random.default_rng(seed)
    frames: list[Atoms] = []
    infos: list[dict] = []
    n_untrusted = n_candidate = planned = 0
    n_total = walkers * len(temperatures)
    k = 0
    for t in temperatures:
        for w in range(walkers):
            # A walker that stops (uncertainty past the upper bound, or unphysical dynamics) restarts from another
            # start with fresh velocities until its step budget is used: early committees are unsure a few
            # femtoseconds away from their data, and one stop per walker would leave almost nothing to select.
            left, segments, reasons, u_all, n_flagged, seconds = steps, 0, [], [], 0, 0.0
            start_idx = -1
            while left > 0 and segments <= max_restarts:
                start_idx = int(rng.integers(len(starts)))
                wd = UncertaintyWatchdog(warn=lower, stop=upper, scale=scale)
                traj = Path(out_dir) / f"walker-{t:g}K-{w}-{segments}.extxyz" if out_dir is not None else None
                res = run_md(
                    starts[start_idx],
                    UncertaintyBiasedCalculator(potential, bias, bias_width) if bias > 0 else potential.calculator(),
                    ensemble=ensemble,
                    temperature=float(t),
                    timestep=timestep,
                    steps=left,
                    friction=friction,
                    pressure=pressure,
                    barostat_time=barostat_time,
                    interval=interval,
                    seed=int(rng.integers(2**31)),
                    trajectory=traj,
                    watchdog=wd,
                    allow_bond_breaking=allow_bond_breaking,
                    progress=progress,
                )
                u = res.uncertainties
                u_all.append(u)
                n_untrusted += int(np.sum(u >= lower))
                n_candidate += int(np.sum((u >= lower) & (u < upper)))
                n_run = max(res.steps_done, 1)
                planned += n_run
                left -= n_run
                segments += 1
                n_flagged += len(res.uncertain_frames)
                seconds += res.seconds
                if res.stopped_because:
                    reasons.append(res.stopped_because)
                seen_steps = set()
                for f in [*res.frames, *res.uncertain_frames]:
                    step = int(f.info.get("step", -1))
                    if step in seen_steps:
                        continue
                    seen_steps.add(step)
                    f.info.update(walker=k, segment=segments - 1, start_index=start_idx, target_temperature=float(t))
                    frames.append(f)
            if left > 0:  # restarts exhausted: the steps never run count as untrusted
                n_untrusted += left
                planned += left
            u = np.concatenate(u_all) if u_all else np.zeros(0)
            info = {
                "walker": k,
                "temperature": float(t),
                "segments": segments,
                "steps_done": steps - max(left, 0),
                "stopped_because": "; ".join(reasons[:3])
                + (f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""),
                "n_stops": len(reasons),
                "max_uncertainty": float(u.max()) if len(u) else None,
                "mean_uncertainty": float(u.mean()) if len(u) else None,
                "n_flagged": n_flagged,
                "seconds": seconds,
            }
            infos.append(info)
            if on_walker is not None:
                on_walker(k, n_total, info)
            k += 1
    return ExplorationResult(
        frames=frames,
        walkers=infos,
        untrusted_fraction=n_untrusted / max(planned, 1),
        candidate_fraction=n_candidate / max(planned, 1),
        steps_planned=planned,
    )


# -- the step --------------------------------------------------------------------------------------------


class Explore(Step):
    description = "MD walkers on the committee"

    def __init__(self, i: int, trust: dict | None = None):
        self.i = i
        self.trust = trust
        self.name = f"iter{i}.explore"

    def run(self, run) -> dict:
        i, trust = self.i, self.trust
        e = run.cfg.explore
        d = run.iter_dir(i)
        committee = run.load_committee(i)
        train, valid = run.labelled()
        starts = [*train, *valid]
        for a in starts:
            a.calc = None
        run.log(
            f"iteration {i}: exploring with {e.walkers * len(e.temperatures)} walker(s) x {e.steps} steps "
            f"at {', '.join(f'{t:g}' for t in e.temperatures)} K"
        )

        def on_walker(k, n, info):
            why = f", {info['n_stops']} stop(s): {info['stopped_because']}" if info["n_stops"] else ""
            mu = info["max_uncertainty"]
            run.log(
                f"  walker {k + 1}/{n} ({info['temperature']:g} K): max σ {mu if mu is None else f'{mu:.3f}'} eV/Å{why}"
            )

        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(run.cfg.execution.md_threads)
        try:
            res = _explore_walkers(run, committee, starts, trust, i, on_walker)
        finally:
            torch.set_num_threads(threads)
        atomic_write_images(d / "explored.extxyz", res.frames)
        info = res.to_dict()
        atomic_write_json(d / "explore.json", info)
        run.log(
            f"iteration {i}: {res.untrusted_fraction:.1%} of MD steps untrusted "
            f"({res.candidate_fraction:.1%} candidates)"
        )
        return info


def _explore_walkers(run, committee, starts, trust, i, on_walker):
    e = run.cfg.explore
    d = run.iter_dir(i)
    return explore(
        committee,
        starts,
        temperatures=e.temperatures,
        walkers=e.walkers,
        steps=e.steps,
        timestep=e.timestep,
        friction=e.friction,
        ensemble=e.ensemble,
        interval=e.interval,
        lower=trust["lower"],
        upper=trust["upper"],
        scale=trust["scale"],
        seed=run.cfg.seed + ITER_SEED_STRIDE * i + 17,
        out_dir=d / "explore",
        allow_bond_breaking=e.allow_bond_breaking,
        progress=False,
        on_walker=on_walker,
        bias=e.bias,
        bias_width=e.bias_width,
        pressure=e.pressure,
        barostat_time=e.barostat_time,
    )
