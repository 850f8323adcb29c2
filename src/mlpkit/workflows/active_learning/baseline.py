"""The random-sampling baseline: what the same labels would have bought without active learning.

Same everything except the choice of configurations: the same initial labelled set (or, when AL chose its
initial set by farthest-point from a pool, an initial set drawn at random from that pool), then configurations drawn
uniformly at random from MD at the same conditions (the exploration temperatures, thermostat, timestep and
friction, walkers started from the initial configurations) driven by the run's driver method, labelled with
the same reference, the same committee training (settings, seeds, warm starts), the same test set.

The random configurations are a prefix of one seeded pool whose size does not depend on AL's outcome (see
:func:`max_random_labels`), so runs with the same seed and label counts draw the same random configurations.
Points of the curve are taken at AL's label counts, then continued with the same step up to
``baseline.label_factor`` × AL's final count, and stop early once random sampling reaches AL's final test
force MAE (then its label count is known). The saving is

    saving = AL labels / labels random sampling needs for AL's final force MAE

where the random count is interpolated (log-log, between the two bracketing points). A saving > 1 means AL
lost, and is reported as such; if random sampling never gets there, only a bound is reported.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mlpkit.data.dataset import Dataset
from mlpkit.files import atomic_write_images, atomic_write_json, read_images
from mlpkit.workflows.active_learning.context import ITER_SEED_STRIDE
from mlpkit.workflows.active_learning.driver import driver_frames
from mlpkit.workflows.active_learning.initial import initial_pool
from mlpkit.workflows.active_learning.labelling import add_and_label, count_labels
from mlpkit.workflows.active_learning.metrics import CURVE_METRICS, evaluate_committee
from mlpkit.workflows.active_learning.summary import curve
from mlpkit.workflows.active_learning.train import train_step


def max_random_labels(cfg) -> int:
    """Most random configurations the baseline of any run of ``cfg`` can draw, whatever AL's outcome.

    AL labels at most ``min(label_budget, initial.n + max_iterations * top_k)`` configurations and the baseline
    up to ``label_factor`` times that, the initial set included. The pool is sized on this bound, not on the
    labels AL happened to use, so the random draws (a prefix of one seeded pool) depend on the seed and the
    MD settings only: runs that differ only in how AL selects share the same random configurations.
    """
    n_al_max = min(cfg.label_budget, cfg.initial.n + cfg.max_iterations * cfg.select.top_k)
    return max(math.floor(cfg.baseline.label_factor * n_al_max) - cfg.initial.n, 1)


def own_initial_set(cfg) -> bool:
    """Whether the baseline draws its own random initial set or shares AL's (see ``baseline.initial``)."""
    if cfg.baseline.initial == "auto":
        return cfg.initial.selection == "farthest_point"
    return cfg.baseline.initial == "random"


def _random_initial(run, db: Dataset) -> list:
    """Label ``initial.n`` configurations drawn at random (seeded) from AL's initial pool into ``db``."""
    cfg = run.cfg
    pool = initial_pool(run)
    rng = np.random.default_rng(cfg.seed + 2024)
    images = [pool[i] for i in np.sort(rng.choice(len(pool), cfg.initial.n, replace=False))]
    if not run.state.done("baseline.initial"):
        run.log(f"random baseline: labelling {len(images)} initial configurations drawn at random from the pool")
        rep = add_and_label(
            db,
            run.labeler,
            images,
            source="initial",
            valid_fraction=cfg.select.valid_fraction,
            seed=cfg.seed,
            **cfg.execution.where(),
            progress=run.progress,
        )
        run.state.mark("baseline.initial", rep)
    return db.to_atoms(method=run.method, source="initial")


def _pool(run, n_needed: int, starts: list | None = None) -> list:
    """The driver-MD pool random configurations are drawn from, in drawing order (cached in the run).

    starts: where the walkers start (default: AL's initial set)."""
    cfg = run.cfg
    e = cfg.explore
    path = run.run_dir / "baseline" / "pool.extxyz"
    if run.state.done("baseline.pool") and path.exists():
        return read_images(path)
    starts = list(starts or read_images(run.run_dir / "initial.extxyz") or [run.structure])
    for a in starts:
        a.calc = None
    n_walkers = e.walkers * len(e.temperatures)
    per_walker = math.ceil(cfg.baseline.pool_factor * max(n_needed, 1) / n_walkers)
    rng = np.random.default_rng(cfg.seed + 4242)
    frames = []
    k = 0
    for t in e.temperatures:
        for _ in range(e.walkers):
            start = starts[int(rng.integers(len(starts)))]
            frames += driver_frames(
                start,
                run.driver.calculator,
                driver=run.driver.method,
                temperature=t,
                thermostat=e.ensemble,
                timestep=e.timestep,
                friction=e.friction,
                pressure=e.pressure,
                barostat_time=e.barostat_time,
                equilibration=0,
                every=e.interval,
                n=per_walker,
                seed=cfg.seed + 9001 + 31 * k,
                allow_bond_breaking=e.allow_bond_breaking,
                label=f"random-md-{t:g}K",
            )
            k += 1
    order = rng.permutation(len(frames))
    frames = [frames[i] for i in order]
    atomic_write_images(path, frames)
    run.state.mark("baseline.pool", {"n": len(frames), "walkers": n_walkers, "frames_per_walker": per_walker})
    # hand back what the file holds, so a resumed run (which reads the file) sees bit-identical configurations
    return read_images(path)


def _point_data(db: Dataset, method: str, n_random: int) -> tuple[list, list]:
    """(train, valid) labelled configurations of a curve point: the initial set and the first ``n_random`` random
    draws. Draws are stored in drawing order, so they are the first rows by id (failed ones count as drawn); a
    run re-opened with a new end point may hold more draws than an earlier point uses."""
    drawn = sorted(r.id for r in db.rows(method=method) if r.get("source") != "initial")[:n_random]
    keep = set(drawn)

    def mine(split: str) -> list:
        return [
            a
            for a in db.to_atoms(method=method, split=split)
            if a.info.get("source") == "initial" or a.info["row_id"] in keep
        ]

    return mine("train"), mine("valid")


def _log_interp_crossing(xs: list[float], ys: list[float], target: float) -> float | None:
    """First x where the piecewise log-log linear curve (xs increasing) falls to ``target``; None if never."""
    for j in range(len(xs)):
        if ys[j] is not None and ys[j] <= target:
            if j == 0:
                return float(xs[0])
            x0, x1, y0, y1 = xs[j - 1], xs[j], ys[j - 1], ys[j]
            if y0 is None or y0 <= y1:
                return float(x1)
            f = (math.log(y0) - math.log(target)) / (math.log(y0) - math.log(y1))
            return float(math.exp(math.log(x0) + f * (math.log(x1) - math.log(x0))))
    return None


def run_baseline(run, final: int) -> dict:
    """Run (or resume) the random baseline for an AL run object whose last iteration is ``final``."""

    cfg = run.cfg
    al_curve = curve(run, final)
    al_counts = [c["n_labels"] for c in al_curve]
    al_final = al_curve[-1]
    n_al = al_final["n_labels"]
    target = al_final.get("forces_mae")
    n_max = math.floor(cfg.baseline.label_factor * n_al)
    step = (
        max(1, round((al_counts[-1] - al_counts[0]) / max(len(al_counts) - 1, 1)))
        if len(al_counts) > 1
        else cfg.select.top_k
    )
    counts = sorted(set(al_counts))
    while counts[-1] + step <= n_max:
        counts.append(counts[-1] + step)
    if counts[-1] < n_max:
        counts.append(n_max)
    bdir = run.run_dir / "baseline"
    bdir.mkdir(parents=True, exist_ok=True)
    db = Dataset(bdir / "baseline.db")
    shared_initial = not own_initial_set(cfg)
    if shared_initial:
        initial = [a for a in run.dataset.to_atoms(method=run.method, source="initial")]
        for split in ("train", "valid"):
            db.add(
                [a for a in initial if a.info.get("split") == split],
                method=run.method,
                source="initial",
                labelled=True,
                split=split,
            )
    else:
        # random sampling all the way: its initial set is drawn at random from the pool AL chose its own from
        initial = _random_initial(run, db)
    n_initial = len(initial)
    # walkers start from the baseline's initial set, in store order
    pool = _pool(run, max_random_labels(cfg), starts=initial)
    run.log(f"random baseline: up to {n_max} labels ({cfg.baseline.label_factor:g} x AL's {n_al}), points at {counts}")
    ctx = _PointContext(run, db, pool, n_initial, bdir, shared_initial, target)
    points = (
        _search(ctx, counts, n_al, target) if cfg.baseline.points == "search" else _whole_curve(ctx, counts, target)
    )
    points = sorted(points, key=lambda p: p["n_labels"])
    xs = [p["n_labels"] for p in points]
    ys = [p["forces_mae"] for p in points]
    needed = _log_interp_crossing(xs, ys, target) if target is not None else None
    out = {
        "points": points,
        "al_labels": n_al,
        "al_final_forces_mae": target,
        "max_labels": n_max,
        "random_labels_needed": needed,
    }
    if needed is not None:
        ratio = n_al / needed
        out["saving"] = ratio
        verdict = (
            f"AL needed {ratio:.0%} of the labels random sampling needed"
            if ratio < 1
            else "tie: random sampling reached AL's error with the same number of labels"
            if ratio == 1
            else f"AL lost: random sampling reached AL's final error with fewer labels ({needed:.0f} vs {n_al})"
        )
        out["verdict"] = verdict
    else:
        out["saving"] = None
        out["saving_bound"] = n_al / xs[-1] if xs else None
        out["verdict"] = (
            f"random sampling did not reach AL's final force MAE within {xs[-1] if xs else 0} labels:"
            f" AL needed < {n_al / xs[-1]:.0%} of the labels"
            if xs
            else "no baseline points"
        )
    atomic_write_json(Path(bdir) / "baseline.json", out)
    run.log(f"random baseline: {out['verdict']}")
    return out


class _PointContext:
    """What every baseline point needs: the run, the baseline's store, the random pool, the initial set's size."""

    def __init__(
        self, run, db: Dataset, pool: list, n_initial: int, bdir: Path, shared_initial: bool, target: float | None
    ):
        self.run, self.db, self.pool, self.n_initial = run, db, pool, n_initial
        self.bdir, self.shared_initial, self.target = bdir, shared_initial, target
        self.models: dict[int, Path] = {}  # label count -> model directory of the points trained so far

    def point(self, j: int, n: int) -> dict:
        """Train (or resume) the committee on the initial set + the first ``n - n_initial`` random draws and score
        it; ``j`` names the point (state key ``baseline.point{j}``, directory ``point-{j:03d}``)."""
        from mlpkit.potentials.registry import load_potential

        run, cfg, db = self.run, self.run.cfg, self.db
        key, pdir = f"baseline.point{j}", self.bdir / f"point-{j:03d}"
        if run.state.done(key):
            res = run.state.result(key)
            self.models[res["n_labels"]] = pdir / "model"
            return res
        n_random = max(n - self.n_initial, 0)
        drawn = self.pool[:n_random]
        # batches are the frames new at this point, split train/valid as AL splits its batches
        n_initial_rows = db.count(method=run.method, source="initial")  # failed initial rows included
        already = max(count_labels(db, run.method) + db.count(status="failed", method=run.method) - n_initial_rows, 0)
        new = drawn[already:]
        if new:
            run.log(f"random baseline point {j}: labelling {len(new)} random MD configurations")
            add_and_label(
                db,
                run.labeler,
                new,
                source=f"random-{j}",
                valid_fraction=cfg.select.valid_fraction,
                seed=cfg.seed + j + 1,
                **cfg.execution.where(),
                progress=run.progress,
            )
        train, valid = _point_data(db, run.method, n_random)
        # a warm start (if the committee uses one) continues from the largest point below this one
        below = [m for m in self.models if m < len(train) + len(valid)]
        prev = load_potential(self.models[max(below)]) if below and (self.models[max(below)]).exists() else None
        if (
            self.shared_initial
            and j == 0
            and run.state.result("iter0.train").get("n_labels") == len(train) + len(valid)
        ):
            # identical data and seeds to AL's iteration 0: the same committee, so reuse it
            committee = run.load_committee(0)
        else:
            run.log(f"random baseline point {j}: training on {len(train)} + {len(valid)} configurations")
            committee = train_step(cfg, train, valid, prev, cfg.seed + ITER_SEED_STRIDE * j)
        committee.save(pdir / "model")
        metrics = evaluate_committee(committee, run.test)
        res = {"point": j, "n_labels": len(train) + len(valid), **{k: metrics.get(k) for k in CURVE_METRICS}}
        atomic_write_json(pdir / "metrics.json", res)
        run.state.mark(key, res)
        self.models[res["n_labels"]] = pdir / "model"
        if res["forces_mae"] is not None:
            target = self.target
            run.log(
                f"random baseline point {j}: {res['n_labels']} labels, test force MAE "
                f"{res['forces_mae'] * 1000:.1f} meV/Å"
                + (f" (AL final {target * 1000:.1f})" if target is not None else "")
            )
        return res


def _reached(res: dict, target: float | None) -> bool:
    return target is not None and res.get("forces_mae") is not None and res["forces_mae"] <= target


def _whole_curve(ctx: _PointContext, counts: list[int], target: float | None) -> list[dict]:
    """Points at every count, in order, until random sampling reaches AL's final error."""
    points = []
    for j, n in enumerate(counts):
        points.append(ctx.point(j, n))
        if _reached(points[-1], target):
            break
    return points


def _search(ctx: _PointContext, counts: list[int], n_al: int, target: float | None) -> list[dict]:
    """Points where they decide the answer: at AL's final count (the same-labels comparison), at the largest
    count (if random sampling has not got there yet), then bisection over ``counts`` for the first count where
    random sampling reaches AL's error. Point names follow ``counts``' order, so a resumed run finds them."""
    index = {n: j for j, n in enumerate(counts)}
    done: dict[int, dict] = {}

    def at(n: int) -> dict:
        if n not in done:
            done[n] = ctx.point(index[n], n)
        return done[n]

    if target is None:
        return [at(n_al)]
    if _reached(at(n_al), target):
        lo, hi = -1, counts.index(n_al)  # the first reaching count is at or below AL's
    elif not _reached(at(counts[-1]), target):
        return sorted(done.values(), key=lambda p: p["n_labels"])  # a bound: not reached within the largest count
    else:
        lo, hi = counts.index(n_al), len(counts) - 1
    while hi - lo > 1:  # invariant: counts[hi] reaches the target, counts[lo] (if >= 0) does not
        mid = (lo + hi) // 2
        if _reached(at(counts[mid]), target):
            hi = mid
        else:
            lo = mid
    if lo >= 0:
        at(counts[lo])
    return sorted(done.values(), key=lambda p: p["n_labels"])
