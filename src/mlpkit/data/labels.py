"""A reference label of one configuration (energy, forces, optional stress, time taken), its checks, and its
conversion from and to an ASE single-point calculator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from mlpkit.errors import InputError, LabelFailure


@dataclass(frozen=True)
class Label:
    """A reference result for one configuration. energy: eV; forces: (n_atoms, 3) eV/Å; stress: (6,) eV/Å³."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray | None = None
    seconds: float = 0.0

    def validate(self, n_atoms: int) -> None:
        """Raise :class:`LabelFailure` unless every number is finite and every shape right."""
        forces = np.asarray(self.forces, dtype=float)
        if not np.isfinite(self.energy):
            raise LabelFailure(f"non-finite energy {self.energy}")
        if forces.shape != (n_atoms, 3):
            raise LabelFailure(f"forces have shape {forces.shape}, expected ({n_atoms}, 3)")
        if not np.all(np.isfinite(forces)):
            raise LabelFailure("non-finite forces")
        if self.stress is not None:
            stress = np.asarray(self.stress, dtype=float)
            if stress.shape != (6,) or not np.all(np.isfinite(stress)):
                raise LabelFailure(f"bad stress {stress!r}")


def label_from_atoms(atoms: Atoms) -> Label:
    calc = atoms.calc
    if calc is None or "energy" not in calc.results or "forces" not in calc.results:
        raise InputError(
            "a labelled configuration needs an energy and forces (extxyz: energy= in the comment "
            "line and a forces column)"
        )
    stress = calc.results.get("stress")
    if stress is not None:
        stress = np.asarray(stress, dtype=float)
        if stress.shape == (3, 3):
            from ase.stress import full_3x3_to_voigt_6_stress

            stress = full_3x3_to_voigt_6_stress(stress)
    return Label(energy=float(calc.results["energy"]), forces=np.asarray(calc.results["forces"], float), stress=stress)


def single_point(atoms: Atoms, label: Label) -> SinglePointCalculator:
    results = {"energy": float(label.energy), "forces": np.asarray(label.forces, dtype=float)}
    if label.stress is not None:
        results["stress"] = np.asarray(label.stress, dtype=float)
    return SinglePointCalculator(atoms, **results)
