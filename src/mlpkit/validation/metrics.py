"""Error metrics of a potential against reference labels, in the units reports use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from mlpkit.data.records import reference_results
from mlpkit.potentials.base import Potential, Prediction


@dataclass
class ErrorTable:
    """Reference and predicted values side by side, flattened for metrics and parity plots.

    energy_ref / energy_pred: (n_configs,) eV per atom; forces_ref / forces_pred: (n_components,) eV/Å;
    forces_symbols: (n_components,) the element each force component belongs to.
    """

    energy_ref: np.ndarray
    energy_pred: np.ndarray
    forces_ref: np.ndarray
    forces_pred: np.ndarray
    forces_symbols: np.ndarray
    n_atoms: np.ndarray

    def metrics(self) -> dict[str, float]:
        """MAE/RMSE/max of energy per atom (eV/atom) and force components (eV/Å), and counts."""
        de = self.energy_pred - self.energy_ref
        df = self.forces_pred - self.forces_ref
        out = {
            "n_configs": len(de),
            "n_atoms": int(self.n_atoms.sum()),
            "energy_mae_per_atom": float(np.mean(np.abs(de))),
            "energy_rmse_per_atom": float(np.sqrt(np.mean(de**2))),
            "energy_max_error_per_atom": float(np.max(np.abs(de))),
            "forces_mae": float(np.mean(np.abs(df))),
            "forces_rmse": float(np.sqrt(np.mean(df**2))),
            "forces_max_error": float(np.max(np.abs(df))),
        }
        return out

    def per_element_force_metrics(self) -> dict[str, dict[str, float]]:
        df = self.forces_pred - self.forces_ref
        return {
            str(s): {
                "forces_mae": float(np.mean(np.abs(df[m]))),
                "forces_rmse": float(np.sqrt(np.mean(df[m] ** 2))),
                "n_components": int(m.sum()),
            }
            for s in np.unique(self.forces_symbols)
            for m in [self.forces_symbols == s]
        }


def error_table(images: Sequence[Atoms], prediction: Prediction) -> ErrorTable:
    """Pair the reference labels carried by ``images`` with ``prediction`` for the same configurations."""
    e_ref, f_ref = reference_results(images)
    n_atoms = np.array([len(a) for a in images])
    symbols = np.concatenate([np.repeat(a.get_chemical_symbols(), 3) for a in images])
    return ErrorTable(
        energy_ref=e_ref / n_atoms,
        energy_pred=np.asarray(prediction.energy, dtype=float) / n_atoms,
        forces_ref=np.concatenate([f.ravel() for f in f_ref]),
        forces_pred=np.concatenate([np.asarray(f).ravel() for f in prediction.forces]),
        forces_symbols=symbols,
        n_atoms=n_atoms,
    )


def evaluate(potential: Potential, images: Sequence[Atoms], batch_size: int = 64) -> tuple[dict, ErrorTable]:
    """Predict ``images`` with ``potential`` and return (metrics dict, the error table)."""
    preds = [potential.predict(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    table = error_table(images, Prediction.concatenate(preds))
    metrics = table.metrics()
    metrics["per_element"] = table.per_element_force_metrics()
    return metrics, table
