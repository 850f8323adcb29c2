"""The one ASE calculator adapter for every mlpkit potential."""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes


class MLPCalculator(Calculator):
    """Use any :class:`mlpkit.models.base.Potential` as an ASE calculator.

    Results: ``energy``/``free_energy`` (eV), ``forces`` (eV/Å), ``stress`` (eV/Å³, Voigt, periodic cells
    only). Potentials that know their uncertainty also give ``energy_std`` (eV), ``forces_std``
    ((n, 3) eV/Å) and ``max_force_std`` (eV/Å; max over atoms of the norm of the per-atom force std).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energy_std", "forces_std", "max_force_std"]

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
