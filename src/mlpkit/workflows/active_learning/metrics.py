"""Test-set metrics of a committee, as kept per point of the active-learning and random-sampling curves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

#: test-set numbers kept per point of the AL and random curves (see :func:`evaluate_committee`)
CURVE_METRICS = (
    "forces_mae",
    "forces_rmse",
    "energy_mae_per_atom",
    "energy_rmse_per_atom",
    "forces_mae_frame_median",
    "forces_mae_by_temperature",
)


def evaluate_committee(committee, test: Sequence[Atoms]) -> dict:
    """Test-set metrics of ``committee`` (eV, eV/Å; see :meth:`mlpkit.validation.metrics.ErrorTable.metrics`).

    Besides the MAE/RMSE over all force components: ``forces_mae_frame_median`` (eV/Å, median over frames of
    each frame's force MAE: a few badly extrapolated frames can dominate the MAE of a small dataset) and, when
    the test frames come from MD at several temperatures (``info['temperature']``), ``forces_mae_by_temperature``
    ({"500": eV/Å, ...}).
    """
    from mlpkit.validation.metrics import evaluate

    if not test:
        return {}
    test = list(test)
    metrics, table = evaluate(committee, test)
    metrics.pop("per_element", None)
    frame_of_component = np.repeat(np.arange(len(test)), 3 * table.n_atoms)
    abs_err = np.abs(table.forces_pred - table.forces_ref)
    per_frame = np.bincount(frame_of_component, weights=abs_err) / (3 * table.n_atoms)
    metrics["forces_mae_frame_median"] = float(np.median(per_frame))
    temps = [a.info.get("temperature") for a in test]
    if None not in temps and len(set(temps)) > 1:
        temps = np.asarray(temps, dtype=float)
        metrics["forces_mae_by_temperature"] = {
            f"{t:g}": float(abs_err[temps[frame_of_component] == t].mean()) for t in np.unique(temps)
        }
    return metrics
