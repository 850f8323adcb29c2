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
