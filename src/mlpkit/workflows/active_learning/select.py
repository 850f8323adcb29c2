"""Which explored configurations to label: a trust window, then top-k with diversity in descriptor space.

Trust window on the calibrated uncertainty u (eV/Å):  u < lower → trusted (nothing to learn);
lower ≤ u < upper → candidate; u ≥ upper → discarded (unphysical or hopelessly far from the data).

Among candidates at most ``top_k`` are picked, no two closer than ``min_distance`` in descriptor space:
``farthest_point`` starts from the most uncertain candidate and repeatedly adds the candidate farthest from
everything picked so far (diverse coverage); ``uncertainty`` walks down the candidates by uncertainty and
keeps those far enough from the picks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError
from mlpkit.files import atomic_write_images, atomic_write_json, read_images
from mlpkit.workflows.active_learning.context import ITER_SEED_STRIDE
from mlpkit.workflows.active_learning.driver import driver_frames
from mlpkit.workflows.active_learning.labelling import count_labels
from mlpkit.workflows.engine import Step


@dataclass
class TrustBounds:
    """Trust window (eV/Å, calibrated) and where each bound came from (for the run's record)."""

    lower: float
    upper: float
    scale: float
    lower_from: str
    upper_from: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def trust_masks(u: np.ndarray, lower: float, upper: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks (trusted, candidate, discarded) for calibrated uncertainties ``u``."""
    u = np.asarray(u, dtype=float)
    bad = ~np.isfinite(u)
    trusted = (u < lower) & ~bad
    discarded = (u >= upper) | bad
    candidate = ~trusted & ~discarded
    return trusted, candidate, discarded


def auto_lower(calibrated_sigma_valid: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of the calibrated σ on validation configurations (eV/Å)."""
    s = np.asarray(calibrated_sigma_valid, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise InputError("no validation configurations to derive the lower trust bound from; give trust.lower")
    return float(np.quantile(s, quantile))


def auto_upper(labelled: Sequence[Atoms]) -> float:
    """RMS of the per-atom reference force magnitude (eV/Å) over labelled configurations."""
    from mlpkit.data.records import reference_results

    _, forces = reference_results(labelled)
    f = np.concatenate([np.linalg.norm(x, axis=1) for x in forces])
    return float(np.sqrt(np.mean(f**2)))


def frame_fingerprints(potential, images: Sequence[Atoms], species: Sequence[str] | None = None) -> np.ndarray:
    """One vector per configuration: per element, the mean and max of its atoms' descriptors.

    Uses ``potential.descriptors`` (standardised per-atom features) when the potential has them, otherwise
    sorted inverse interatomic distances per element pair (permutation invariant). Shape (n, d).
    """
    images = list(images)
    if not images:
        return np.zeros((0, 0))
    species = list(species or sorted(set().union(*(a.get_chemical_symbols() for a in images))))
    if hasattr(potential, "descriptors"):
        try:
            per_atom = potential.descriptors(images)
        except (NotImplementedError, InputError):
            per_atom = None
        if per_atom is not None:
            rows = []
            for atoms, d in zip(images, per_atom, strict=True):
                d = np.asarray(d, dtype=float)
                sym = np.array(atoms.get_chemical_symbols())
                parts = []
                for s in species:
                    m = sym == s
                    if m.any():
                        parts += [d[m].mean(axis=0), d[m].max(axis=0)]
                    else:
                        parts += [np.zeros(d.shape[1]), np.zeros(d.shape[1])]
                rows.append(np.concatenate(parts))
            return np.stack(rows)
    return _inverse_distance_fingerprints(images, species)


def _inverse_distance_fingerprints(images: Sequence[Atoms], species: Sequence[str]) -> np.ndarray:
    pairs = [(a, b) for i, a in enumerate(species) for b in species[i:]]
    rows, width = [], {}
    for atoms in images:
        sym = np.array(atoms.get_chemical_symbols())
        d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
        inv = np.where(d > 0, 1.0 / np.maximum(d, 1e-12), 0.0)
        parts = {}
        for a, b in pairs:
            block = inv[np.ix_(sym == a, sym == b)]
            vals = block[np.triu_indices_from(block, k=1)] if a == b else block.ravel()
            parts[(a, b)] = np.sort(vals)[::-1]
            width[(a, b)] = max(width.get((a, b), 0), len(vals))
        rows.append(parts)
    out = []
    for parts in rows:
        vec = []
        for p in pairs:
            v = parts[p]
            vec.append(np.pad(v, (0, width[p] - len(v))))
        out.append(np.concatenate(vec) if vec else np.zeros(0))
    return np.stack(out)


def diverse_subset(pool: Sequence[Atoms], n: int, committee_settings=None) -> list[int]:
    """Indices of ``n`` configurations of ``pool`` spread over its descriptor space, for an initial set.

    No model is trained yet, so the fingerprints (see :func:`frame_fingerprints`) come from an untrained potential
    of the committee's first family (its descriptors do not depend on training) and are z-scored over the pool;
    farthest-point sampling starts from the configuration closest to the pool's centroid, so the typical
    structure is in the set and the rest cover its edges.
    """
    from mlpkit.potentials.registry import create_potential

    pool = list(pool)
    if n >= len(pool):
        return list(range(len(pool)))
    family, hyper = "bpnn", {}
    if committee_settings is not None:
        fam = committee_settings.family
        family = fam if isinstance(fam, str) else fam[0]
        hyper = dict(committee_settings.hyperparameters)
    try:
        potential = create_potential(family, pool, **hyper)
    except (InputError, TypeError):
        potential = None
    x = frame_fingerprints(potential, pool)
    std = x.std(axis=0)
    keep = std > 1e-12 * max(float(std.max()), 1.0)
    x = (x[:, keep] - x[:, keep].mean(axis=0)) / std[keep]
    centrality = -np.linalg.norm(x, axis=1)
    return select_diverse(centrality, x, top_k=n, min_distance=0.0, strategy="farthest_point")


def auto_min_distance(train_fingerprints: np.ndarray) -> float:
    """Half the median nearest-neighbour distance among training fingerprints (0 if fewer than 2)."""
    x = np.asarray(train_fingerprints, dtype=float)
    if len(x) < 2:
        return 0.0
    d = np.sqrt(np.maximum(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), 0.0))
    np.fill_diagonal(d, np.inf)
    return 0.5 * float(np.median(d.min(axis=1)))


def select_diverse(
    uncertainty: np.ndarray,
    fingerprints: np.ndarray,
    *,
    top_k: int,
    min_distance: float = 0.0,
    strategy: str = "farthest_point",
) -> list[int]:
    """Indices (into the candidate arrays) of at most ``top_k`` picks, pairwise ≥ ``min_distance`` apart.

    uncertainty: (n,) calibrated σ of the candidates; fingerprints: (n, d).
    """
    u = np.asarray(uncertainty, dtype=float)
    x = np.asarray(fingerprints, dtype=float)
    n = len(u)
    if n == 0 or top_k <= 0:
        return []
    if x.shape[0] != n:
        raise InputError(f"{n} uncertainties but {x.shape[0]} fingerprints")
    first = int(np.argmax(u))
    picks = [first]
    dmin = np.sqrt(((x - x[first]) ** 2).sum(axis=1))
    if strategy == "farthest_point":
        while len(picks) < min(top_k, n):
            dmin_masked = dmin.copy()
            dmin_masked[picks] = -np.inf
            j = int(np.argmax(dmin_masked))
            if dmin_masked[j] < max(min_distance, 1e-12):
                break
            picks.append(j)
            dmin = np.minimum(dmin, np.sqrt(((x - x[j]) ** 2).sum(axis=1)))
    elif strategy == "uncertainty":
        for j in np.argsort(-u, kind="stable"):
            if len(picks) >= top_k:
                break
            j = int(j)
            if j in picks:
                continue
            if dmin[j] >= max(min_distance, 1e-12):
                picks.append(j)
                dmin = np.minimum(dmin, np.sqrt(((x - x[j]) ** 2).sum(axis=1)))
    else:
        raise InputError(f"unknown selection strategy {strategy!r}")
    return picks


# -- the step --------------------------------------------------------------------------------------------


def most_uncertain_trusted(uncertainty: np.ndarray, trusted: np.ndarray, n: int, pool_factor: int = 5) -> np.ndarray:
    """Indices of at most ``pool_factor · n`` trusted frames (finite σ), most uncertain first: the pool from which
    :class:`Select` draws ``n`` diverse frames when the trust window holds too few candidates although the test
    error is above the stop target."""
    u = np.asarray(uncertainty, dtype=float)
    idx = np.flatnonzero(np.asarray(trusted, dtype=bool) & np.isfinite(u))
    return idx[np.argsort(-u[idx], kind="stable")][: max(pool_factor * n, 0)]


class Select(Step):
    """Label what the committee is unsure about: the frames in the trust window (top-k, diverse). Fallbacks when
    the window is empty: where walkers stopped past the upper bound, or driver MD when every walker went
    unphysical; and with ``fill_below_target`` (the loop sets it when the test error is above the stop target)
    the most uncertain trusted frames fill the selection up to top-k, because a committee that is calm where
    the measured error says it is wrong has nothing else to point at (a lower bound taken from validation frames
    that AL itself picked can trust every explored frame)."""

    description = "trust window, top-k, diversity"

    def __init__(self, i: int, trust: dict | None = None, fill_below_target: bool = False):
        self.i = i
        self.trust = trust
        self.fill_below_target = fill_below_target
        self.name = f"iter{i}.select"

    def _diverse(self, run, cache: dict, frames: list, u: np.ndarray, k: int) -> list[int]:
        """``select_diverse`` on ``frames`` with the iteration's committee fingerprints (loaded once, in ``cache``)."""
        s = run.cfg.select
        if "committee" not in cache:
            committee = run.load_committee(self.i)
            species = list(committee.species)
            train, _ = run.labelled()
            cache["committee"], cache["species"] = committee, species
            cache["min_distance"] = (
                auto_min_distance(frame_fingerprints(committee, train, species))
                if s.min_distance == "auto"
                else float(s.min_distance)
            )
        fp = frame_fingerprints(cache["committee"], frames, cache["species"])
        return select_diverse(u, fp, top_k=k, min_distance=cache["min_distance"], strategy=s.strategy)

    def run(self, run) -> dict:
        i, trust = self.i, self.trust
        s = run.cfg.select
        d = run.iter_dir(i)
        frames = read_images(d / "explored.extxyz")
        u = np.array([float(f.info.get("uncertainty", np.nan)) for f in frames])
        trusted, cand, discarded = trust_masks(u, trust["lower"], trust["upper"])
        candidates = [f for f, c in zip(frames, cand, strict=True) if c]
        cu = u[cand]
        n_used = count_labels(run.dataset, run.method)
        n_pending = len(run.dataset.pending(run.method))
        room = max(run.cfg.label_budget - n_used - n_pending, 0)
        k = min(s.top_k, room)
        cache: dict = {}
        picks = self._diverse(run, cache, candidates, cu, k) if candidates and k > 0 else []
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
            run.log(f"iteration {i}: {fallback}")
        short = k - len(selected)
        pool = most_uncertain_trusted(u, trusted, short) if self.fill_below_target and short > 0 else []
        if len(pool):
            pool_frames = [frames[j] for j in pool]
            extra = [pool_frames[j] for j in self._diverse(run, cache, pool_frames, u[pool], short)]
            selected = selected + extra
            note = (
                f"{len(candidates)} candidate(s) in the trust window while the test error is above the stop target: "
                f"added {len(extra)} of the most uncertain trusted frames (calibrated σ "
                f"{min(f.info['uncertainty'] for f in extra):.3g}-{max(f.info['uncertainty'] for f in extra):.3g}, "
                f"diverse among the {len(pool)} most uncertain)"
            )
            fallback = f"{fallback}; {note}" if fallback else note
            run.log(f"iteration {i}: {note}")
        if not selected and not candidates and k > 0 and not trusted.any():
            # Every walker went unphysical at once: no exploration frame is usable. Add configurations the way
            # the initial set was made (driver MD at the exploration temperature), so the loop can go on.
            e = run.cfg.explore
            selected = driver_frames(
                run.structure,
                run.driver.calculator,
                driver=run.driver.method,
                temperature=e.temperatures[0],
                thermostat=e.ensemble,
                timestep=e.timestep,
                friction=e.friction,
                pressure=e.pressure,
                barostat_time=e.barostat_time,
                equilibration=run.cfg.initial.equilibration,
                every=run.cfg.initial.steps_between,
                n=k,
                seed=run.cfg.seed + ITER_SEED_STRIDE * (i + 1) + 5,
                allow_bond_breaking=e.allow_bond_breaking,
                label=f"driver-md-iter-{i}",
            )
            fallback = (
                f"every walker went unphysical: labelled {len(selected)} configurations from driver MD at "
                f"{e.temperatures[0]:g} K instead"
            )
            run.log(f"iteration {i}: {fallback}")
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
            "min_distance": cache.get("min_distance", 0.0),
            "fallback": fallback,
            "selected_uncertainty": [float(f.info.get("uncertainty", np.nan)) for f in selected],
        }
        atomic_write_json(d / "selection.json", info)
        run.log(
            f"iteration {i}: {info['n_candidates']} candidates, {info['n_discarded']} discarded, "
            f"{len(selected)} selected for labelling"
        )
        return info
