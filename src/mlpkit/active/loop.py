"""The active-learning loop: label a few, train a committee, explore, pick the uncertain, label, repeat.

    initial sampling → label → [train committee → evaluate on the test set → explore (MD walkers) →
    stop? → select (trust window, top-k, diversity) → label] × iterations → random baseline → report

Each step is recorded in ``state.json`` when it has finished (see :mod:`mlpkit.active.state`); running again
with the same run directory continues after the last finished step. Reference calculations go through the
execution layer (:func:`mlpkit.execution.label_pending`), which stores each label as it arrives and records
failures (they are skipped, and counted in the summary).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.active.config import ActiveLearningConfig
from mlpkit.active.metrics import CURVE_METRICS, evaluate_committee
from mlpkit.active.select import diverse_subset
from mlpkit.active.state import (
    RunState,
    atomic_write_images,
    atomic_write_json,
    check_config_unchanged,
    read_images,
    read_json,
)
from mlpkit.data.dataset import Dataset
from mlpkit.errors import InputError, MixedMethodError

Log = Callable[[str], None]

#: member seeds of iteration i are seed + ITER_SEED_STRIDE * i + member
ITER_SEED_STRIDE = 7919


@dataclass
class ALSummary:
    """The outcome of a run (also written to ``report/summary.json``)."""

    run_dir: str
    stopped_because: str
    iterations: int
    n_labels: int
    n_failed: int
    curve: list[dict] = field(default_factory=list)
    final_metrics: dict = field(default_factory=dict)
    baseline: dict | None = None
    label_seconds: float = 0.0
    wall_seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


# -- helpers shared with the baseline -------------------------------------------------------------------


def split_batch(n: int, valid_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask (n,) of the batch members kept for validation (seeded; at least one of ≥ 3 when > 0)."""
    mask = np.zeros(n, dtype=bool)
    if valid_fraction <= 0 or n == 0:
        return mask
    k = round(valid_fraction * n)
    if k == 0 and n >= 3:
        k = 1
    idx = np.random.default_rng(seed).permutation(n)[:k]
    mask[idx] = True
    return mask


def add_and_label(
    dataset: Dataset,
    labeler,
    candidates: Sequence[Atoms],
    *,
    source: str,
    valid_fraction: float,
    seed: int,
    workers: int,
    progress: bool,
    split: str | None = None,
    scheduler: str | None = None,
    cluster_config: dict | None = None,
) -> dict:
    """Add ``candidates`` as pending rows (train/valid split per :func:`split_batch`, or all ``split``) and label
    every pending row of the method through the execution layer (``workers`` local Dask processes, or a
    ``scheduler`` address, or a dask-jobqueue ``cluster_config``). Safe to call again after a crash.

    A candidate the method refuses (overlapping atoms, unknown element) is stored as ``failed`` with the reason.
    """
    from mlpkit.execution import label_pending

    images = []
    for i, atoms in enumerate(candidates):
        try:
            labeler.check(atoms)
            images.append(atoms)
        except InputError as exc:
            # Exploration can hand over a configuration the method cannot compute (two atoms collapsed onto
            # each other): record it as failed with the reason, never let it stop the loop.
            report = dataset.add([atoms], method=labeler.method, source=source, split=split or "train")
            if report.ids:
                dataset.record_failure(report.ids[0], f"rejected before labelling ({source} #{i}): {exc}")
    if split is None:
        valid = split_batch(len(images), valid_fraction, seed)
        dataset.add(
            [a for a, v in zip(images, valid, strict=True) if not v],
            method=labeler.method,
            source=source,
            split="train",
        )
        dataset.add(
            [a for a, v in zip(images, valid, strict=True) if v], method=labeler.method, source=source, split="valid"
        )
    else:
        dataset.add(images, method=labeler.method, source=source, split=split)
    rep = label_pending(
        dataset, labeler, workers=workers, scheduler=scheduler, cluster_config=cluster_config, progress=progress
    )
    return {
        "labelled": rep.labelled,
        "failed": rep.failed,
        "seconds": rep.seconds,
        "where": rep.workers,
        "labelled_in_source": dataset.count(status="labelled", method=labeler.method, source=source),
        "failed_in_source": dataset.count(status="failed", method=labeler.method, source=source),
    }


def count_labels(dataset: Dataset, method: str) -> int:
    """Labels used for training/validation (the test set excluded)."""
    return sum(dataset.count(status="labelled", method=method, split=s) for s in ("train", "valid"))


def driver_frames(
    structure_or_starts: Atoms | Sequence[Atoms],
    calculator_factory,
    *,
    temperature: float,
    thermostat: str,
    timestep: float,
    friction: float,
    equilibration: int,
    every: int,
    n: int,
    seed: int,
    allow_bond_breaking: bool = False,
    label: str = "md",
) -> list[Atoms]:
    """``n`` frames, one every ``every`` steps after ``equilibration``, of MD driven by a cheap method.

    If the MD stops early (unphysical), it restarts from the start structure with the next seed until ``n``
    frames are collected (at most 20 restarts)."""
    from mlpkit.md.dynamics import run_md

    starts = [structure_or_starts] if isinstance(structure_or_starts, Atoms) else list(structure_or_starts)
    frames: list[Atoms] = []
    for attempt in range(20):
        need = n - len(frames)
        if need <= 0:
            break
        start = starts[attempt % len(starts)]
        steps = equilibration + need * every
        res = run_md(
            start,
            calculator_factory(),
            ensemble=thermostat,
            temperature=temperature,
            timestep=timestep,
            steps=steps,
            friction=friction,
            interval=every,
            seed=seed + attempt,
            allow_bond_breaking=allow_bond_breaking,
        )
        got = [f for f in res.frames if f.info["step"] > equilibration and f.info["step"] % every == 0]
        for f in got[:need]:
            f.info.update(source=label, temperature=float(temperature))
            for k in ("mlp_energy",):
                f.info.pop(k, None)
            frames.append(f)
    if len(frames) < n:
        raise InputError(f"driver MD at {temperature} K kept going unphysical; got {len(frames)} of {n} frames")
    return frames


def train_step(cfg: ActiveLearningConfig, train: list[Atoms], valid: list[Atoms], previous, seed: int):
    from mlpkit.uncertainty.model_spec import train_committee

    c = cfg.committee
    fit = {"progress": False, **c.fit}
    return train_committee(
        train,
        valid or None,
        family=c.family,
        n_members=c.n_members,
        bootstrap=c.bootstrap,
        seed=seed,
        hyperparameters=c.hyperparameters,
        previous=previous if c.warm_start else None,
        **fit,
    )


# -- the loop ------------------------------------------------------------------------------------------


class _Run:
    def __init__(self, cfg: ActiveLearningConfig, run_dir: Path, progress: bool, log: Log):
        from mlpkit.data.structures import read_structures
        from mlpkit.labelers import make_labeler

        self.cfg = cfg
        self.run_dir = run_dir
        self.progress = progress
        self.log = log
        run_dir.mkdir(parents=True, exist_ok=True)
        check_config_unchanged(
            run_dir,
            cfg.model_dump(mode="json"),
            normalise=lambda old: ActiveLearningConfig.model_validate(old).model_dump(mode="json"),
        )
        self.state = RunState(run_dir)
        self.labeler = make_labeler(dict(cfg.reference))
        self.driver = make_labeler(dict(cfg.driver)) if cfg.driver is not None else self.labeler
        self.method = self.labeler.method
        self.structure = read_structures(cfg.structure)[0]
        self.labeler.check(self.structure)
        self.dataset = Dataset(run_dir / "dataset.db")
        self.test: list[Atoms] = []

    # initial set ---------------------------------------------------------------------------------------

    def initial(self) -> None:
        cfg, ini = self.cfg, self.cfg.initial
        path = self.run_dir / "initial.extxyz"
        if not self.state.done("initial"):
            if not path.exists():  # sampled once; a resumed run labels exactly the same frames
                if ini.selection == "farthest_point":
                    pool = self.initial_pool()
                    self.log(
                        f"initial set: the {ini.n} most diverse of {len(pool)} unlabelled configurations "
                        "(farthest-point in descriptor space)"
                    )
                    images = [pool[i] for i in sorted(diverse_subset(pool, ini.n, self.cfg.committee))]
                elif ini.sampling == "md":
                    images = driver_frames(
                        self.structure,
                        self.driver.calculator,
                        temperature=ini.temperature,
                        thermostat=ini.thermostat,
                        timestep=cfg.explore.timestep,
                        friction=cfg.explore.friction,
                        equilibration=ini.equilibration,
                        every=ini.steps_between,
                        n=ini.n,
                        seed=cfg.seed,
                        allow_bond_breaking=cfg.explore.allow_bond_breaking,
                        label="initial",
                    )
                elif ini.sampling == "rattle":
                    from mlpkit.sampling import rattle

                    images = rattle(self.structure, ini.n, stdev=ini.rattle_stdev, seed=cfg.seed)
                else:
                    pool = self.initial_pool()
                    idx = np.sort(np.random.default_rng(cfg.seed).choice(len(pool), ini.n, replace=False))
                    images = [pool[i] for i in idx]
                atomic_write_images(path, images)
            images = read_images(path)
            self.log(f"initial set: labelling {len(images)} configurations with {self.method}")
            rep = add_and_label(
                self.dataset,
                self.labeler,
                images,
                source="initial",
                valid_fraction=cfg.select.valid_fraction,
                seed=cfg.seed,
                **cfg.execution.where(),
                progress=self.progress,
            )
            if rep["labelled_in_source"] < 2:
                raise InputError(
                    f"only {rep['labelled_in_source']} initial configurations could be labelled "
                    f"({rep['failed_in_source']} failed); see `mlpkit data` for the errors"
                )
            self.state.mark("initial", **rep)

    def initial_pool(self) -> list[Atoms]:
        """The unlabelled configurations the initial set is chosen from (cached in ``initial-pool.extxyz``).

        sampling='file': the file's structures. sampling='md' with selection='farthest_point': ``pool_factor`` x n
        driver-MD frames, ``steps_between`` steps apart after ``equilibration``. The random baseline draws its
        initial set from the same pool.
        """
        ini = self.cfg.initial
        path = self.run_dir / "initial-pool.extxyz"
        if path.exists():
            return read_images(path)
        if ini.sampling == "file":
            from mlpkit.data.structures import read_structures

            pool = read_structures(ini.file)
            if len(pool) < ini.n:
                raise InputError(f"initial.file {ini.file} has {len(pool)} structures, fewer than initial.n = {ini.n}")
            for a in pool:
                a.calc = None
        else:
            n_pool = ini.n * ini.pool_factor
            self.log(f"initial pool: {n_pool} frames of {self.driver.method} MD at {ini.temperature:g} K")
            pool = driver_frames(
                self.structure,
                self.driver.calculator,
                temperature=ini.temperature,
                thermostat=ini.thermostat,
                timestep=self.cfg.explore.timestep,
                friction=self.cfg.explore.friction,
                equilibration=ini.equilibration,
                every=ini.steps_between,
                n=n_pool,
                seed=self.cfg.seed,
                allow_bond_breaking=self.cfg.explore.allow_bond_breaking,
                label="initial",
            )
        for k, a in enumerate(pool):
            a.info["pool_index"] = k
        atomic_write_images(path, pool)
        return read_images(path)  # what a resumed run will read: bit-identical configurations, identical hashes

    # test set ------------------------------------------------------------------------------------------

    def test_set(self) -> None:
        t = self.cfg.test
        cache = Path(t.cache) if t.cache else self.run_dir / "test-set.extxyz"
        if t.file:
            from mlpkit.data.structures import read_structures

            images = read_structures(t.file)
            for i, a in enumerate(images):
                if a.calc is None or "forces" not in a.calc.results:
                    raise InputError(f"test.file {t.file} frame {i} carries no reference energy and forces")
                m = a.info.get("method")
                if m and m not in (self.method, t.method):
                    raise MixedMethodError(f"test.file {t.file} was labelled with {m}, this run uses {self.method}")
            self.test = images
        elif cache.exists() and cache.stat().st_size > 0:
            self.test = read_images(cache)
            methods = {a.info.get("method") for a in self.test} - {None}
            if methods and methods != {self.method}:
                raise MixedMethodError(
                    f"test set {cache} was labelled with {sorted(methods)}, this run uses "
                    f"{self.method}; point test.cache elsewhere"
                )
        else:
            frames: list[Atoms] = []
            sample = self.run_dir / "test-frames.extxyz"
            if not sample.exists():
                for j, temp in enumerate(t.temperatures):
                    frames += driver_frames(
                        self.structure,
                        self.driver.calculator,
                        temperature=temp,
                        thermostat=t.thermostat,
                        timestep=self.cfg.explore.timestep,
                        friction=self.cfg.explore.friction,
                        equilibration=t.equilibration,
                        every=t.steps_between,
                        n=t.n_per_temperature,
                        seed=t.seed + 101 * j,
                        allow_bond_breaking=True,
                        label=f"test-{temp:g}K",
                    )
                atomic_write_images(sample, frames)
            frames = read_images(sample)
            self.log(
                f"test set: labelling {len(frames)} configurations from independent driver MD at "
                f"{', '.join(f'{x:g}' for x in t.temperatures)} K"
            )
            for temp in t.temperatures:
                sub = [f for f in frames if f.info.get("source") == f"test-{temp:g}K"]
                self.dataset.add(sub, method=self.method, source=f"test-{temp:g}K", split="test")
            add_and_label(
                self.dataset,
                self.labeler,
                [],
                source="test",
                valid_fraction=0,
                seed=0,
                **self.cfg.execution.where(),
                progress=self.progress,
                split="test",
            )
            self.test = self.dataset.to_atoms(method=self.method, split="test")
            if not self.test:
                raise InputError("no test configuration could be labelled")
            from ase.io import write

            tmp = cache.with_name(cache.name + ".part")
            cache.parent.mkdir(parents=True, exist_ok=True)
            write(tmp, self.test, format="extxyz")
            os.replace(tmp, cache)
        if not self.state.done("test"):
            temps = sorted({str(a.info.get("source", "?")) for a in self.test})
            self.state.mark("test", n=len(self.test), sources=temps, path=str(t.file or cache))

    # one iteration ---------------------------------------------------------------------------------------

    def labelled(self) -> tuple[list[Atoms], list[Atoms]]:
        train = self.dataset.to_atoms(method=self.method, split="train")
        valid = self.dataset.to_atoms(method=self.method, split="valid")
        return train, valid

    def load_committee(self, i: int):
        from mlpkit.potentials.registry import load_potential

        return load_potential(self.state.iter_dir(i) / "model")

    def train(self, i: int) -> dict:
        from mlpkit.uncertainty.calibration import calibrate, plot_calibration

        step = f"iter{i}.train"
        if self.state.done(step):
            return self.state.result(step)
        d = self.state.iter_dir(i)
        train, valid = self.labelled()
        n_labels = len(train) + len(valid)
        prev = self.load_committee(i - 1) if i > 0 else None
        prev_n = self.state.result(f"iter{i - 1}.train").get("n_labels") if i > 0 else None
        t0 = time.perf_counter()
        if prev is not None and prev_n == n_labels:
            self.log(f"iteration {i}: no new labels, keeping the previous committee")
            committee = prev
        else:
            self.log(
                f"iteration {i}: training a committee of {self.cfg.committee.n_members} on {len(train)} "
                f"train + {len(valid)} valid configurations"
            )
            committee = train_step(self.cfg, train, valid, prev, self.cfg.seed + ITER_SEED_STRIDE * i)
        committee.metadata.update(method=self.method, iteration=i, n_labels=n_labels)
        committee.save(d / "model")
        train_seconds = time.perf_counter() - t0
        metrics = evaluate_committee(committee, self.test)
        # calibration on validation data sets the trust window; on the test set it is reported only
        cal_valid = calibrate(committee, valid) if len(valid) >= 3 else None
        cal_test = calibrate(committee, self.test) if self.test else None
        if cal_test is not None:
            plot_calibration(
                cal_test,
                d / "calibration-test.png",
                title=f"iteration {i}: test set, Spearman ρ = {cal_test.spearman_config:.2f}",
            )
        bounds = self.trust_bounds(committee, valid, train, cal_valid)
        result = {
            "iteration": i,
            "n_labels": n_labels,
            "n_train": len(train),
            "n_valid": len(valid),
            "test": metrics,
            "train_seconds": train_seconds,
            "trust": bounds,
            "calibration_valid": cal_valid.to_dict() if cal_valid else None,
            "calibration_test": cal_test.to_dict() if cal_test else None,
        }
        atomic_write_json(d / "metrics.json", result)
        self.state.mark(step, **result)
        if metrics:
            self.log(
                f"iteration {i}: {n_labels} labels, test force MAE {metrics['forces_mae'] * 1000:.1f} meV/Å, "
                f"energy MAE {metrics['energy_mae_per_atom'] * 1000:.2f} meV/atom; trust window "
                f"[{bounds['lower']:.3f}, {bounds['upper']:.3f}) eV/Å"
            )
        return result

    def trust_bounds(self, committee, valid, train, cal_valid) -> dict:
        from mlpkit.active.select import auto_lower, auto_upper

        tr = self.cfg.trust
        scale = (
            cal_valid.scale
            if (tr.calibrate and cal_valid is not None and np.isfinite(cal_valid.scale) and cal_valid.scale > 0)
            else 1.0
        )
        scale_from = "fitted on validation data" if scale != 1.0 else "none (raw committee spread)"
        if tr.lower == "auto":
            ref = valid if len(valid) >= 3 else train
            sigma = committee.predict(ref).max_force_deviation()
            lower = auto_lower(scale * sigma, tr.lower_quantile)
            lower_from = (
                f"q{tr.lower_quantile:g} of calibrated σ on {'validation' if ref is valid else 'training'} data"
            )
        else:
            lower, lower_from = float(tr.lower), "config"
        if tr.upper == "auto":
            upper = auto_upper([*train, *valid])
            upper_from = "RMS reference atomic force of the labelled data"
        else:
            upper, upper_from = float(tr.upper), "config"
        if lower >= upper:
            # an unusually poor committee: keep a window open instead of discarding every frame
            lower_from += f" (was {lower:.3g} >= upper; set to upper/3)"
            lower = upper / 3
        return {
            "lower": float(lower),
            "upper": float(upper),
            "scale": float(scale),
            "lower_from": lower_from,
            "upper_from": upper_from,
            "scale_from": scale_from,
        }

    def explore(self, i: int, trust: dict) -> dict:

        step = f"iter{i}.explore"
        if self.state.done(step):
            return self.state.result(step)
        e = self.cfg.explore
        d = self.state.iter_dir(i)
        committee = self.load_committee(i)
        train, valid = self.labelled()
        starts = [*train, *valid]
        for a in starts:
            a.calc = None
        self.log(
            f"iteration {i}: exploring with {e.walkers * len(e.temperatures)} walker(s) x {e.steps} steps "
            f"at {', '.join(f'{t:g}' for t in e.temperatures)} K"
        )

        def on_walker(k, n, info):
            why = f", {info['n_stops']} stop(s): {info['stopped_because']}" if info["n_stops"] else ""
            mu = info["max_uncertainty"]
            self.log(
                f"  walker {k + 1}/{n} ({info['temperature']:g} K): max σ {mu if mu is None else f'{mu:.3f}'} eV/Å{why}"
            )

        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(self.cfg.execution.md_threads)
        try:
            res = self._explore_walkers(committee, starts, trust, i, on_walker)
        finally:
            torch.set_num_threads(threads)
        atomic_write_images(d / "explored.extxyz", res.frames)
        info = res.to_dict()
        atomic_write_json(d / "explore.json", info)
        self.state.mark(step, **info)
        self.log(
            f"iteration {i}: {res.untrusted_fraction:.1%} of MD steps untrusted "
            f"({res.candidate_fraction:.1%} candidates)"
        )
        return info

    def _explore_walkers(self, committee, starts, trust, i, on_walker):
        from mlpkit.active.explore import explore

        e = self.cfg.explore
        d = self.state.iter_dir(i)
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
            seed=self.cfg.seed + ITER_SEED_STRIDE * i + 17,
            out_dir=d / "explore",
            allow_bond_breaking=e.allow_bond_breaking,
            progress=False,
            on_walker=on_walker,
            bias=e.bias,
            bias_width=e.bias_width,
        )

    def select(self, i: int, trust: dict) -> dict:
        from mlpkit.active.select import auto_min_distance, frame_fingerprints, select_diverse, trust_masks

        step = f"iter{i}.select"
        if self.state.done(step):
            return self.state.result(step)
        s = self.cfg.select
        d = self.state.iter_dir(i)
        frames = read_images(d / "explored.extxyz")
        u = np.array([float(f.info.get("uncertainty", np.nan)) for f in frames])
        trusted, cand, discarded = trust_masks(u, trust["lower"], trust["upper"])
        candidates = [f for f, c in zip(frames, cand, strict=True) if c]
        cu = u[cand]
        n_used = count_labels(self.dataset, self.method)
        n_pending = len(self.dataset.pending(self.method))
        room = max(self.cfg.label_budget - n_used - n_pending, 0)
        k = min(s.top_k, room)
        picks: list[int] = []
        min_distance = 0.0
        if candidates and k > 0:
            committee = self.load_committee(i)
            train, _ = self.labelled()
            species = list(committee.species)
            fp = frame_fingerprints(committee, candidates, species)
            min_distance = (
                auto_min_distance(frame_fingerprints(committee, train, species))
                if s.min_distance == "auto"
                else float(s.min_distance)
            )
            picks = select_diverse(cu, fp, top_k=k, min_distance=min_distance, strategy=s.strategy)
        selected = [candidates[j] for j in picks]
        fallback = ""
        if not candidates and k > 0 and discarded.any():
            # Nothing inside the window, but walkers ran past the upper bound: the committee is too poor for
            # the window to work. Label where each walker stopped for uncertainty (a real MD configuration,
            # a few steps from the data, that passed the physical checks) so the next committee can improve.
            stops = [
                f
                for f, dsc in zip(frames, discarded, strict=True)
                if dsc and str(f.info.get("stopped_because", "")).startswith("uncertainty")
            ]
            by_walker: dict[tuple[int, int], Atoms] = {}
            for f in stops:
                w = (int(f.info.get("walker", -1)), int(f.info.get("segment", 0)))
                if w not in by_walker or f.info.get("step", 0) < by_walker[w].info.get("step", 0):
                    by_walker[w] = f  # the first configuration past the bound
            selected = sorted(by_walker.values(), key=lambda f: f.info["uncertainty"])[:k]
        if selected and not candidates:
            fallback = (
                f"no candidates inside the trust window: labelled the first configuration past the upper "
                f"bound of {len(selected)} walker segment(s)"
            )
            self.log(f"iteration {i}: {fallback}")
        if not selected and not candidates and k > 0 and not trusted.any():
            # Every walker went unphysical at once: no exploration frame is usable. Add configurations the way
            # the initial set was made (driver MD at the exploration temperature), so the loop can go on.
            e = self.cfg.explore
            selected = driver_frames(
                self.structure,
                self.driver.calculator,
                temperature=e.temperatures[0],
                thermostat=e.ensemble,
                timestep=e.timestep,
                friction=e.friction,
                equilibration=self.cfg.initial.equilibration,
                every=self.cfg.initial.steps_between,
                n=k,
                seed=self.cfg.seed + ITER_SEED_STRIDE * (i + 1) + 5,
                allow_bond_breaking=e.allow_bond_breaking,
                label=f"driver-md-iter-{i}",
            )
            fallback = (
                f"every walker went unphysical: labelled {len(selected)} configurations from driver MD at "
                f"{e.temperatures[0]:g} K instead"
            )
            self.log(f"iteration {i}: {fallback}")
        for f in selected:
            f.info["selected_in_iteration"] = i
        atomic_write_images(d / "selected.extxyz", selected)
        info = {
            "n_frames": len(frames),
            "n_trusted": int(trusted.sum()),
            "n_candidates": int(cand.sum()),
            "n_discarded": int(discarded.sum()),
            "n_selected": len(selected),
            "top_k": s.top_k,
            "budget_room": room,
            "min_distance": min_distance,
            "fallback": fallback,
            "selected_uncertainty": [float(f.info.get("uncertainty", np.nan)) for f in selected],
        }
        atomic_write_json(d / "selection.json", info)
        self.state.mark(step, **info)
        self.log(
            f"iteration {i}: {info['n_candidates']} candidates, {info['n_discarded']} discarded, "
            f"{len(selected)} selected for labelling"
        )
        return info

    def label(self, i: int) -> dict:
        step = f"iter{i}.label"
        if self.state.done(step):
            return self.state.result(step)
        images = read_images(self.state.iter_dir(i) / "selected.extxyz")
        rep = {"labelled": 0, "failed": 0, "seconds": 0.0}
        if images:
            self.log(f"iteration {i}: labelling {len(images)} configurations with {self.method}")
            rep = add_and_label(
                self.dataset,
                self.labeler,
                images,
                source=f"al-iter-{i}",
                valid_fraction=self.cfg.select.valid_fraction,
                seed=self.cfg.seed + i + 1,
                **self.cfg.execution.where(),
                progress=self.progress,
            )
        atomic_write_json(self.state.iter_dir(i) / "labels.json", rep)
        self.state.mark(step, **rep)
        return rep

    def should_stop(self, i: int, metrics: dict) -> str:
        """The reason to stop after iteration ``i``'s exploration, or ''."""
        st = self.cfg.stop
        fractions = [self.state.result(f"iter{j}.explore").get("untrusted_fraction") for j in range(i + 1)]
        recent = fractions[-st.patience :]
        calm = len(recent) == st.patience and all(f is not None and f < st.candidate_fraction for f in recent)
        test = metrics.get("test") or {}
        err_ok, err_txt = True, []
        if st.force_mae is not None:
            fm = test.get("forces_mae")
            err_ok &= fm is not None and fm <= st.force_mae
            err_txt.append(
                f"force MAE {fm * 1000:.1f} meV/Å (target {st.force_mae * 1000:.0f})"
                if fm is not None
                else "no test set"
            )
        if st.energy_mae_per_atom is not None:
            em = test.get("energy_mae_per_atom")
            err_ok &= em is not None and em <= st.energy_mae_per_atom
            err_txt.append(
                f"energy MAE {em * 1000:.2f} meV/atom (target {st.energy_mae_per_atom * 1000:.2f})"
                if em is not None
                else "no test set"
            )
        if calm and err_ok:
            return (
                f"converged: untrusted fraction of exploration below {st.candidate_fraction:g} for "
                f"{st.patience} iteration(s) ({', '.join(f'{f:.3f}' for f in recent)}) and "
                f"{'; '.join(err_txt) or 'no error target'}"
            )
        if i >= self.cfg.max_iterations:
            return (
                f"iteration cap ({self.cfg.max_iterations}) reached; untrusted fractions "
                f"{', '.join(f'{f:.3f}' for f in fractions if f is not None)}; {'; '.join(err_txt)}"
            )
        if count_labels(self.dataset, self.method) >= self.cfg.label_budget:
            return f"label budget ({self.cfg.label_budget}) reached; {'; '.join(err_txt)}"
        return ""

    def reconsider_stop(self, reason: str) -> tuple[int, str]:
        """(iteration to go on from, stop reason) for a run that had stopped, under the current settings.

        ``stop``, ``max_iterations`` and ``label_budget`` may change on resume: a tighter target, more
        iterations or a bigger budget re-open a finished run at its last iteration (its random-baseline curve,
        which depends on where AL ended, is recomputed; its labels are kept). Looser settings never move the
        stop earlier than where the run already is.
        """
        final = int(self.state.get("final_iteration", 0))
        now = self.should_stop(final, self.train(final))
        if now:
            return final, reason
        self.log(
            f"the stop settings changed since this run stopped after iteration {final} ({reason}); "
            f"going on from iteration {final}"
        )
        self.state.reopen(forget_prefix="baseline.point")
        return final, ""

    def run(self) -> ALSummary:
        t0 = time.perf_counter()
        self.initial()
        self.test_set()
        i = 0
        reason = self.state.get("stopped_because", "")
        if reason:
            i, reason = self.reconsider_stop(reason)
        while not reason:
            metrics = self.train(i)
            self.explore(i, metrics["trust"])
            reason = self.should_stop(i, metrics)
            if reason:
                self.state.set("stopped_because", reason)
                self.state.set("final_iteration", i)
                break
            sel = self.select(i, metrics["trust"])
            self.label(i)
            if sel["n_selected"] == 0:
                self.log(f"iteration {i}: nothing to label (all explored frames trusted or discarded)")
            i += 1
        self.log(f"stopped: {reason}")
        final = int(self.state.get("final_iteration", i))
        baseline = None
        if self.cfg.baseline.enabled:
            from mlpkit.active.baseline import run_baseline

            baseline = run_baseline(self, final)
        summary = self.summary(final, reason, baseline, time.perf_counter() - t0)
        from mlpkit.active.report import write_report

        write_report(self.run_dir, summary)
        self.state.set("finished", True)
        return summary

    def curve(self, final: int) -> list[dict]:
        out = []
        for j in range(final + 1):
            r = self.state.result(f"iter{j}.train")
            if r:
                out.append(
                    {
                        "iteration": j,
                        "n_labels": r["n_labels"],
                        **{k: r["test"].get(k) for k in CURVE_METRICS},
                        "untrusted_fraction": self.state.result(f"iter{j}.explore").get("untrusted_fraction"),
                    }
                )
        return out

    def summary(self, final: int, reason: str, baseline: dict | None, wall: float) -> ALSummary:
        s = self.dataset.summary()
        curve = self.curve(final)
        n_failed = sum(self.dataset.count(status="failed", method=self.method, split=x) for x in ("train", "valid"))
        return ALSummary(
            run_dir=str(self.run_dir),
            stopped_because=reason,
            iterations=final,
            n_labels=count_labels(self.dataset, self.method),
            n_failed=n_failed,
            curve=curve,
            final_metrics=curve[-1] if curve else {},
            baseline=baseline,
            label_seconds=float(s["label_seconds"]),
            wall_seconds=wall,
        )


def run_active_learning(
    config: ActiveLearningConfig | str | os.PathLike,
    run_dir: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    log: Log | None = None,
) -> ALSummary:
    """Run (or resume) active learning as ``config`` says, in ``run_dir`` (default ``runs/<name>``).

    ``config`` may be a path to a YAML file. Returns the summary; the full record is in ``run_dir``.
    """
    if not isinstance(config, ActiveLearningConfig):
        config = ActiveLearningConfig.from_yaml(config)
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / config.name
    if config.execution.threads:
        import torch

        torch.set_num_threads(config.execution.threads)
    return _Run(config, run_dir, progress, log or (lambda msg: None)).run()


def load_summary(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / "report" / "summary.json"
    if not path.exists():
        raise InputError(f"{run_dir} has no finished report (report/summary.json); run `mlpkit learn` first")
    return read_json(path)
