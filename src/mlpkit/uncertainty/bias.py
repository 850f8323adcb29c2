"""Uncertainty-driven dynamics: MD on the committee mean lowered where the members disagree.

Exploration with the plain committee mean samples the thermal distribution of the *current* model, so the
rare, high-energy configurations an MLP gets wrong (bond stretches and bends a hotter run reaches) are found
only by waiting. Uncertainty-driven dynamics (Kulichenko et al., Nat. Comput. Sci. 3, 230 (2023); compare
hyperactive learning, van der Oord et al., npj Comput. Mater. 9, 168 (2023)) runs the walkers on a biased
surface that rewards disagreement, with a bias that is bounded so a walker cannot run away into absurd
geometries:

    E_b = Ē + A [exp(−σ_E² / (N B²)) − 1],        σ_E² = (1/M) Σ_m (E_m − Ē)²

A (eV, ``depth``) is the most the bias lowers a configuration; B (eV per √atom, ``width``) is the spread per
√atom at which it has reached 1 − 1/e of that. With per-member forces F_m = −∇E_m the bias needs no extra
derivative, because ∇(σ_E²) = −(2/M) Σ_m (E_m − Ē)(F_m − F̄):

    F_b = F̄ − (2A / (M N B²)) exp(−σ_E² / (N B²)) Σ_m (E_m − Ē)(F_m − F̄)

and the stress likewise. The bias is conservative (F_b = −∇E_b exactly), so Langevin dynamics at T samples
exp(−E_b / kT). The uncertainties reported (``energy_std``, ``forces_std``, ``max_force_std``) are the
unbiased committee's, so an uncertainty watchdog still stops a walker past the trust window.

A linear bias −τσ_E (hyperactive learning without its adaptive τ) was tried first on water and rejected:
walkers of a 30-label committee ran off to σ > 100 eV/Å within a few steps at τ ≥ 3.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import PropertyNotImplementedError, all_changes

from mlpkit.errors import InputError
from mlpkit.potentials.calculator import MLPCalculator


def bias_weight(energies: np.ndarray, n_atoms: int, depth: float, width: float) -> tuple[float, float, float]:
    """(bias energy eV, σ_E eV, w) for M member energies (eV), where the bias force is −w Σ_m (E_m − Ē)(F_m − F̄)."""
    energies = np.asarray(energies, dtype=float)
    dev = energies - energies.mean()
    var = float(np.mean(dev**2))
    g = np.exp(-var / (n_atoms * width**2))
    return depth * (g - 1.0), float(np.sqrt(var)), 2.0 * depth * g / (len(energies) * n_atoms * width**2)


def biased_energy_forces(
    energies: np.ndarray, forces: np.ndarray, depth: float, width: float
) -> tuple[float, np.ndarray, float, np.ndarray]:
    """Biased energy and forces of one configuration from its M member predictions.

    energies: (M,) eV; forces: (M, n_atoms, 3) eV/Å; depth A (eV, ≥ 0); width B (eV per √atom, > 0).
    Returns (E_b eV, F_b (n_atoms, 3) eV/Å, σ_E eV, bias force (n_atoms, 3) eV/Å).
    """
    energies = np.asarray(energies, dtype=float)
    forces = np.asarray(forces, dtype=float)
    mean_f = forces.mean(axis=0)
    e_bias, sigma, w = bias_weight(energies, forces.shape[1], depth, width)
    bias_force = -w * np.tensordot(energies - energies.mean(), forces - mean_f, axes=1)
    return float(energies.mean() + e_bias), mean_f + bias_force, sigma, bias_force


class UncertaintyBiasedCalculator(MLPCalculator):
    """ASE calculator for a :class:`~mlpkit.uncertainty.committee.Committee` on the biased surface E_b (see above).

    Results: ``energy``/``free_energy`` (eV, biased), ``forces`` (eV/Å, biased), ``stress`` (eV/Å³, biased,
    periodic cells), ``bias_energy`` (eV), ``bias_forces`` ((n, 3) eV/Å), and the unbiased committee's
    ``energy_std``, ``forces_std``, ``max_force_std``.
    """

    implemented_properties = [*MLPCalculator.implemented_properties, "bias_energy", "bias_forces"]

    def __init__(self, committee, depth: float, width: float, **kwargs):
        if not hasattr(committee, "predict_members"):
            raise InputError(
                f"uncertainty-biased MD needs a committee (per-member energies and forces), got {committee!r}"
            )
        if not np.isfinite(depth) or depth < 0:
            raise InputError(f"bias depth must be a finite energy >= 0 eV, got {depth}")
        if not np.isfinite(width) or width <= 0:
            raise InputError(f"bias width must be a finite energy > 0 eV, got {width}")
        super().__init__(committee, **kwargs)
        self.depth = float(depth)
        self.width = float(width)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super(MLPCalculator, self).calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties and bool(self.atoms.pbc.all())
        if "stress" in properties and not want_stress:
            raise PropertyNotImplementedError("stress needs a cell periodic in all three directions")
        preds = self.potential.predict_members([self.atoms], stress=want_stress)
        energies = np.array([float(p.energy[0]) for p in preds])
        forces = np.stack([np.asarray(p.forces[0], dtype=float) for p in preds])
        energy, biased_forces, sigma, bias_force = biased_energy_forces(energies, forces, self.depth, self.width)
        forces_std = forces.std(axis=0)
        self.results.update(
            energy=energy,
            free_energy=energy,
            forces=biased_forces,
            bias_energy=energy - float(energies.mean()),
            bias_forces=bias_force,
            energy_std=sigma,
            forces_std=forces_std,
            max_force_std=float(np.linalg.norm(forces_std, axis=1).max()),
        )
        if want_stress:
            stresses = np.stack([np.asarray(p.stress[0], dtype=float) for p in preds])  # (M, 6)
            _, _, w = bias_weight(energies, len(self.atoms), self.depth, self.width)
            # (1/V) ∂(σ_E²)/∂ε = (2/M) Σ_m (E_m − Ē)(S_m − S̄), so S_b = S̄ − w Σ_m (E_m − Ē)(S_m − S̄)
            self.results["stress"] = stresses.mean(axis=0) - w * np.tensordot(
                energies - energies.mean(), stresses - stresses.mean(axis=0), axes=1
            )
