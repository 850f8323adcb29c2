"""Test errors split by the temperature each test frame was sampled at, with each temperature's worst frames.

A single test MAE over a mixed set hides the hot tail: a model can be excellent at 300 K and useless at 1000 K
while the average looks fine. Each test frame carries its temperature (``info['temperature']`` in K, or a
source name such as ``test-md-1000K``); frames without one are grouped under ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from ase import Atoms

from mlpkit.potentials.base import Potential
from mlpkit.validation.checks import predict_all

_KELVIN = re.compile(r"(\d+(?:\.\d+)?)K\b")


def frame_temperature(atoms: Atoms) -> float | None:
    """K: the temperature a frame was sampled at, from its source name (``test-md-1000K``) or ``info['temperature']``
    (the source name wins: a frame's own ``temperature`` may be the instantaneous kinetic one)."""
    m = _KELVIN.search(str(atoms.info.get("source", "")))
    if m:
        return float(m.group(1))
    t = atoms.info.get("temperature")
    try:
        return float(t) if t is not None else None
    except (TypeError, ValueError):
        return None


def distance_range(atoms: Atoms) -> tuple[float, float]:
    """(shortest, longest) interatomic distance in Å (minimum image for periodic cells); (nan, nan) for one atom.

    A cheap, generic descriptor of how far a frame is from equilibrium: a short minimum is a compressed bond, a long
    maximum a stretched molecule."""
    if len(atoms) < 2:
        return float("nan"), float("nan")
    d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
    iu = np.triu_indices(len(atoms), k=1)
    return float(d[iu].min()), float(d[iu].max())


def errors_by_temperature(
    potential: Potential, images: Sequence[Atoms], *, worst: int = 3, batch_size: int = 64
) -> list[dict]:
    """Per temperature (ascending; frames without one last): error metrics and the ``worst`` frames.

    images: labelled test frames (reference energy eV, forces eV/Å on their calculators).
    Returns a list of dicts: ``temperature`` (K or None), ``n``, ``forces_mae``, ``forces_rmse``,
    ``forces_max_error`` (eV/Å, over force components), ``energy_mae_per_atom`` (eV/atom), and ``worst``: the frames
    with the largest force MAE, each ``index`` (position in ``images``), ``forces_mae``, ``forces_max_error`` (eV/Å),
    ``min_distance`` and ``max_distance`` (Å).
    """
    from mlpkit.data.records import reference_results

    images = list(images)
    if not images:
        return []
    e_ref, f_ref = reference_results(images)
    pred = predict_all(potential, images, batch_size)
    n_atoms = np.array([len(a) for a in images])
    de = np.abs(np.asarray(pred.energy, dtype=float) - np.asarray(e_ref, dtype=float)) / n_atoms
    df = [np.abs(np.asarray(p) - np.asarray(r)) for p, r in zip(pred.forces, f_ref, strict=True)]
    frame_mae = np.array([d.mean() for d in df])
    frame_max = np.array([d.max() for d in df])
    temps = [frame_temperature(a) for a in images]
    out = []
    for t in sorted({x for x in temps if x is not None}) + ([None] if None in temps else []):
        idx = np.array([k for k, x in enumerate(temps) if x == t])
        comps = np.concatenate([df[k].ravel() for k in idx])
        order = idx[np.argsort(-frame_mae[idx], kind="stable")][:worst]
        rows = []
        for k in order:
            dmin, dmax = distance_range(images[k])
            rows.append(
                {
                    "index": int(k),
                    "forces_mae": float(frame_mae[k]),
                    "forces_max_error": float(frame_max[k]),
                    "min_distance": dmin,
                    "max_distance": dmax,
                }
            )
        out.append(
            {
                "temperature": t,
                "n": len(idx),
                "forces_mae": float(comps.mean()),
                "forces_rmse": float(np.sqrt(np.mean(comps**2))),
                "forces_max_error": float(comps.max()),
                "energy_mae_per_atom": float(de[idx].mean()),
                "worst": rows,
            }
        )
    return out
