"""The one ASE calculator adapter for every mlpkit potential."""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes


class MLPCalculator(Calculator):
    """Use any :class:`mlpkit.potentials.Potential` as an ASE calculator.

    Results: ``energy``/``free_energy`` (eV), ``forces`` (eV/Å), ``stress`` (eV/Å³, Voigt, periodic cells
    only). Potentials that know their uncertainty also give ``uncertainty``: the one per-configuration score
    (:meth:`Prediction.score`; eV/Å for a force spread, γ for an extrapolation grade), and where they have them
    ``energy_std`` (eV), ``forces_std`` ((n, 3) eV/Å), ``max_force_std`` (eV/Å; max over atoms of the norm of the
    per-atom force std) and ``atom_uncertainty`` ((n,) per-atom score, e.g. γ).
    """

    implemented_properties = [
        "energy",
        "free_energy",
        "forces",
        "stress",
        "uncertainty",
        "energy_std",
        "forces_std",
        "max_force_std",
        "atom_uncertainty",
    ]

    def __init__(self, potential, **kwargs):
        super().__init__(**kwargs)
        self.potential = potential

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties and bool(self.atoms.pbc.all())
        if "stress" in properties and not want_stress:
            from ase.calculators.calculator import PropertyNotImplementedError

            raise PropertyNotImplementedError("stress needs a cell periodic in all three directions")
        pred = self.potential.predict([self.atoms], stress=want_stress)
        self.results["energy"] = float(pred.energy[0])
        self.results["free_energy"] = float(pred.energy[0])
        self.results["forces"] = np.asarray(pred.forces[0])
        if want_stress and pred.stress is not None:
            self.results["stress"] = np.asarray(pred.stress[0])
        if pred.energy_std is not None:
            self.results["energy_std"] = float(pred.energy_std[0])
        if pred.forces_std is not None:
            self.results["forces_std"] = np.asarray(pred.forces_std[0])
            self.results["max_force_std"] = float(np.linalg.norm(pred.forces_std[0], axis=1).max())
        if pred.atom_uncertainty is not None:
            self.results["atom_uncertainty"] = np.asarray(pred.atom_uncertainty[0])
        score = pred.score()
        if score is not None:
            self.results["uncertainty"] = float(score[0])
