"""Does the test data lie inside the training data? (The source's pitfall 3: using a model out of range.)

Three model-agnostic criteria, always measured, plus two that need the potential's cooperation:

* shortest distance of each element pair shorter than anything in the training data (minus a margin);
* reference energy per atom outside the training range (widened by a fraction of that range);
* reference max force norm beyond the training set's largest;
* descriptor distance (when the potential has ``descriptors(images)``): every test atom's distance to its
  nearest training atom of the same element, in the potential's own (standardised) feature space, against
  the training atoms' own nearest-neighbour distances (to atoms of other training configurations): beyond
  ``factor`` x their ``quantile`` counts as outside;
* uncertainty (when ``potential.has_uncertainty``): max per-atom force std above ``uncertainty_force_warn``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from mlpkit.data.records import reference_results
from mlpkit.validation.checks import PASS, WARN, CheckResult, predict_all
from mlpkit.validation.settings import ValidationSettings


def _pair_min_distances(images: Sequence[Atoms], cutoff: float = 6.0) -> list[dict[tuple[int, int], float]]:
    """Per configuration: {(Z_a, Z_b): shortest distance (Å) of that element pair within ``cutoff``}."""
    from ase.neighborlist import neighbor_list

    out = []
    for atoms in images:
        i, j, d = neighbor_list("ijd", atoms, cutoff)
        za, zb = atoms.numbers[i], atoms.numbers[j]
        lo, hi = np.minimum(za, zb), np.maximum(za, zb)
        pairs: dict[tuple[int, int], float] = {}
        if len(d):
            keys = lo * 1000 + hi
            for key in np.unique(keys):
                pairs[(int(key // 1000), int(key % 1000))] = float(d[keys == key].min())
        out.append(pairs)
    return out


def _nn_distances(query: np.ndarray, ref: np.ndarray, query_groups=None, ref_groups=None) -> np.ndarray:
    """Distance of each query row to its nearest ``ref`` row (Euclidean), excluding rows of the same group."""
    from scipy.spatial import cKDTree

    tree = cKDTree(ref)
    if query_groups is None:
        d, _ = tree.query(query, k=1)
        return np.asarray(d)
    # nearest neighbour from another configuration: ask for a few and skip same-configuration hits
    k = min(len(ref), 32)
    d, idx = tree.query(query, k=k)
    d = np.atleast_2d(d)
    idx = np.atleast_2d(idx)
    same = ref_groups[idx] == query_groups[:, None]
    d = np.where(same, np.inf, d)
    return d.min(axis=1)


def descriptor_distances(
    potential, train: Sequence[Atoms], test: Sequence[Atoms], settings: ValidationSettings
) -> dict:
    """Per element: training atoms' own NN distances, test atoms' NN distances to training, the edge.

    Returns {symbol: {"train": (n_train_atoms,), "test": (n_test_atoms,), "edge": float,
    "test_config": (n_test_atoms,) config index}}.
    """
    rng = np.random.default_rng(0)
    d_train = potential.descriptors(list(train))
    d_test = potential.descriptors(list(test))
    out = {}
    for z in np.unique(np.concatenate([a.numbers for a in train])):
        sym = Atoms(numbers=[int(z)]).get_chemical_symbols()[0]
        x_tr = np.concatenate([np.asarray(d)[a.numbers == z] for d, a in zip(d_train, train, strict=True)])
        g_tr = np.concatenate([np.full(int((a.numbers == z).sum()), k) for k, a in enumerate(train)])
        if len(x_tr) > settings.extrapolation_max_train_atoms:
            keep = rng.choice(len(x_tr), settings.extrapolation_max_train_atoms, replace=False)
            x_tr, g_tr = x_tr[keep], g_tr[keep]
        masks = [a.numbers == z for a in test]
        if not any(m.any() for m in masks) or len(np.unique(g_tr)) < 2:
            continue
        x_te = np.concatenate([np.asarray(d)[m] for d, m in zip(d_test, masks, strict=True)])
        c_te = np.concatenate([np.full(int(m.sum()), k) for k, m in enumerate(masks)])
        own = _nn_distances(x_tr, x_tr, g_tr, g_tr)
        own = own[np.isfinite(own)]
        edge = float(np.quantile(own, settings.extrapolation_quantile) * settings.extrapolation_factor)
        out[sym] = {"train": own, "test": _nn_distances(x_te, x_tr), "edge": edge, "test_config": c_te}
    return out


def check_extrapolation(
    potential, train: Sequence[Atoms], test: Sequence[Atoms], settings: ValidationSettings
) -> tuple[CheckResult, dict]:
    """Flag test configurations outside the training distribution; WARN above ``extrapolation_warn_fraction``.

    Returns the row and the raw data (for the report's histogram).
    """
    s = settings
    n_test = len(test)
    flags: dict[str, np.ndarray] = {}
    details: dict = {}

    # element-pair shortest distances
    tr_pairs = _pair_min_distances(train)
    te_pairs = _pair_min_distances(test)
    train_min: dict[tuple[int, int], float] = {}
    for p in tr_pairs:
        for k, v in p.items():
            train_min[k] = min(train_min.get(k, np.inf), v)
    short = np.zeros(n_test, dtype=bool)
    for c, p in enumerate(te_pairs):
        for k, v in p.items():
            if k not in train_min or v < train_min[k] - s.extrapolation_distance_margin:
                short[c] = True
    flags["short_distance"] = short
    details["train_min_pair_distance"] = {f"{a}-{b}": v for (a, b), v in train_min.items()}

    # reference energy per atom and force range
    e_tr, f_tr = reference_results(train)
    e_te, f_te = reference_results(test)
    n_tr = np.array([len(a) for a in train])
    n_te = np.array([len(a) for a in test])
    epa_tr, epa_te = e_tr / n_tr, e_te / n_te
    span = epa_tr.max() - epa_tr.min()
    lo, hi = epa_tr.min() - s.extrapolation_energy_margin * span, epa_tr.max() + s.extrapolation_energy_margin * span
    flags["energy_range"] = (epa_te < lo) | (epa_te > hi)
    details["train_energy_per_atom_range_ev"] = [float(epa_tr.min()), float(epa_tr.max())]
    fmax_tr = max(float(np.linalg.norm(f, axis=1).max()) for f in f_tr)
    fmax_te = np.array([float(np.linalg.norm(f, axis=1).max()) for f in f_te])
    flags["force_range"] = fmax_te > fmax_tr * (1 + s.extrapolation_energy_margin)
    details["train_max_force"] = fmax_tr

    # descriptor space
    plot_data: dict = {}
    if callable(getattr(potential, "descriptors", None)):
        dd = descriptor_distances(potential, train, test, s)
        outside = np.zeros(n_test, dtype=bool)
        for sym, v in dd.items():
            far = v["test"] > v["edge"]
            outside[np.unique(v["test_config"][far])] = True
            details[f"descriptor_{sym}"] = {
                "edge": v["edge"],
                "train_quantile_distance": float(np.quantile(v["train"], s.extrapolation_quantile)),
                "test_max_distance": float(v["test"].max()),
                "test_atoms_outside": int(far.sum()),
            }
        flags["descriptor_distance"] = outside
        plot_data["descriptors"] = dd

    # uncertainty
    if potential.has_uncertainty:
        pred = predict_all(potential, list(test), s.batch_size)
        dev = pred.score()  # eV/Å for a force spread, γ for an extrapolation grade
        if dev is not None:
            grade = potential.uncertainty_kind == "grade"
            flags["uncertainty"] = dev > (s.uncertainty_grade_warn if grade else s.uncertainty_force_warn)
            details["uncertainty_kind"] = potential.uncertainty_kind
            details["max_uncertainty" if grade else "max_force_std"] = float(dev.max())
            details["mean_uncertainty" if grade else "mean_max_force_std"] = float(dev.mean())
            # does the uncertainty know where the model is wrong? rank correlation with the true error
            true = np.array(
                [float(np.linalg.norm(np.asarray(p) - r, axis=1).max()) for p, r in zip(pred.forces, f_te, strict=True)]
            )
            if n_test > 2 and np.ptp(dev) > 0 and np.ptp(true) > 0:
                from scipy.stats import spearmanr

                details["uncertainty_error_spearman"] = float(spearmanr(dev, true).statistic)
            plot_data["uncertainty"] = {"std": dev, "error": true}

    any_flag = np.zeros(n_test, dtype=bool)
    for f in flags.values():
        any_flag |= f
    frac = float(any_flag.mean()) if n_test else 0.0
    counts = {k: int(v.sum()) for k, v in flags.items()}
    details.update(
        counts_outside=counts,
        fraction_outside=frac,
        configs_outside=np.flatnonzero(any_flag).tolist(),
        criteria=sorted(flags),
    )
    ok = frac <= s.extrapolation_warn_fraction
    why = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items() if v)
    return CheckResult(
        key="extrapolation",
        title="Test data inside the training distribution",
        status=PASS if ok else WARN,
        value=f"{int(any_flag.sum())}/{n_test} test configurations outside"
        + (f" ({why})" if why else "")
        + ("" if "descriptor_distance" in flags else "; model has no descriptors: distance/energy criteria only"),
        threshold=f"outside fraction ≤ {s.extrapolation_warn_fraction:g} (WARN)",
        details=details,
        message=""
        if ok
        else "some test configurations are extrapolations: errors there say little about the "
        "training quality, and MD that goes there is unreliable; add such configurations to the training data",
    ), plot_data
