"""Linear moment-tensor potential: ``E = Σ_i [ e_ref(Z_i) + Σ_α c_{Z_i, α} B_α(R_i) ]``.

``B_α`` is the moment-tensor basis (:mod:`mlpkit.potentials.mtp.basis`), ``e_ref`` a per-element baseline (least
squares of the training energies on composition, as for every family), ``c`` one coefficient vector per element,
fitted by one weighted ridge least-squares solve on energies, forces and stress
(:mod:`mlpkit.potentials.mtp.fit`). The extrapolation grade γ of a MaxVol active set
(:mod:`mlpkit.potentials.mtp.grade`) is the uncertainty: ``predict`` fills ``uncertainty`` (max γ over atoms)
and ``atom_uncertainty`` (γ per atom).

Forces and stress are exact derivatives of the energy with respect to the pair vectors (see
:mod:`mlpkit.potentials.mtp.basis` for how they are taken; finite-difference checks in tests/test_mtp.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers

from mlpkit.data.dataset import holdout
from mlpkit.data.records import species_of
from mlpkit.errors import InputError
from mlpkit.potentials.base import Capabilities, FitHistory, Potential, Prediction
from mlpkit.potentials.mtp.basis import MomentTensorBasis
from mlpkit.potentials.mtp.grade import ActiveSet
from mlpkit.potentials.mtp.pairs import Pairs
from mlpkit.potentials.mtp.settings import (
    MTPFitSettings,
    MTPHyperparameters,
    default_hyperparameters,
    default_level,
)
from mlpkit.potentials.store import read_family_json, read_weights, write_model_dir
from mlpkit.schema import validate_settings


class MTPPotential(Potential):
    """Linear moment-tensor potential (see module docstring; hyperparameters in :class:`MTPHyperparameters`).

    A model built without :meth:`fit` has zero coefficients and no active set (γ is then not available).
    """

    family: ClassVar[str] = "mtp"
    capabilities: ClassVar[Capabilities] = Capabilities(uncertainty="grade", fit="closed_form")
    Hyperparameters = MTPHyperparameters
    FitSettings = MTPFitSettings

    def __init__(self, species: Sequence[str], **hyperparameters: Any):
        hp = validate_settings(MTPHyperparameters, hyperparameters, "mtp hyperparameter").model_dump()
        if hp["cutoff"] is None:
            hp["cutoff"] = 5.0
        if hp["r_min"] is None:
            hp["r_min"] = 0.5
        if hp["level"] is None:
            hp["level"] = default_level(len(set(species)), hp["max_rank"])
        if not 0 < hp["r_min"] < hp["cutoff"]:
            raise InputError(f"mtp needs 0 < r_min < cutoff, got r_min={hp['r_min']}, cutoff={hp['cutoff']}")
        self.hyperparameters = hp
        self.species = tuple(sorted(set(species), key=lambda e: atomic_numbers.get(e, 0)))
        if not self.species:
            raise InputError("the mtp family needs at least one element")
        self.cutoff = float(hp["cutoff"])
        self.basis = MomentTensorBasis(len(self.species), hp["level"], hp["max_rank"], self.cutoff, hp["r_min"])
        self.coefficients = np.zeros((len(self.species), self.basis.n_basis))
        self.reference_energies = np.zeros(len(self.species))
        self.active_sets: list[ActiveSet] | None = None
        self.metadata: dict[str, Any] = {}
        self.fitted = False
        #: prediction through the compiled pair loops (``False``: the torch implementation, for checks)
        self.compiled = True

    @classmethod
    def from_data(cls, train: Sequence[Atoms], **hyperparameters: Any) -> MTPPotential:
        """An untrained potential for the elements of ``train`` (cutoff and r_min from the data unless given)."""
        return cls(species_of(train), **default_hyperparameters(train, **hyperparameters))

    # -- evaluation ------------------------------------------------------------------------------------

    def atom_basis(self, pairs: Pairs, vectors: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(moments (N, channels, n_mono), basis values (N, n_basis)) of every atom of ``pairs``."""
        vec, cen, nsp = pairs.tensors()
        if vectors is not None:
            vec = vectors
        phi = self.basis.pair_features(vec)
        moments = self.basis.moments(phi, cen, nsp, len(pairs.species))
        return moments, self.basis.basis_values(moments)

    def descriptors(self, images: Sequence[Atoms]) -> list[np.ndarray]:
        """Basis values of each configuration: list of (n_atoms_i, n_basis) arrays."""
        images = list(images)
        self.check_species(images)
        pairs = Pairs(images, self.species, self.cutoff)
        with torch.no_grad():
            _, values = self.atom_basis(pairs)
        return np.split(values.numpy(), np.cumsum(pairs.n_atoms)[:-1])

    def predict(self, images: Sequence[Atoms], *, stress: bool = False) -> Prediction:
        """Energies (eV), forces (eV/Å), stress (eV/Å³, Voigt; NaN rows unless periodic) and the grade γ.

        ``uncertainty`` is the largest per-atom γ of each configuration, ``atom_uncertainty`` the per-atom γ
        (both None before an active set exists).
        """
        images = list(images)
        self.check_species(images)
        if not images:
            return Prediction(np.zeros(0), [], np.zeros((0, 6)) if stress else None)
        pairs = Pairs(images, self.species, self.cutoff)
        nsp_np = pairs.species[pairs.neighbors]
        if self.compiled:
            moments = torch.from_numpy(
                self.basis.moments_compiled(pairs.vectors, pairs.centers, nsp_np, len(pairs.species))
            )
        else:
            vec, cen, nsp = pairs.tensors()
            with torch.no_grad():
                moments = self.basis.moments(self.basis.pair_features(vec), cen, nsp, len(pairs.species))
        moments.requires_grad_(True)
        invariants = self.basis.invariant_values(moments)
        spec = torch.as_tensor(pairs.species)
        coeff = torch.as_tensor(self.coefficients)[spec]
        with torch.no_grad():
            atom_energy, dinv = self.basis.energy_and_invariant_gradient(invariants.detach(), coeff)
        (dmoments,) = torch.autograd.grad(invariants, moments, grad_outputs=dinv)
        if self.compiled:
            grad = self.basis.pair_gradient_compiled(dmoments.numpy(), pairs.vectors, pairs.centers, nsp_np)
        else:
            with torch.no_grad():
                grad = self.basis.pair_gradient(dmoments, vec, cen, nsp).numpy()
        g = torch.from_numpy(np.ascontiguousarray(grad))
        forces_t = torch.zeros(len(pairs.species), 3, dtype=torch.float64)
        forces_t.index_add_(0, torch.from_numpy(pairs.centers), g)  # v = x_j - x_i: dE/dx_i = -g, F_i = +g
        forces_t.index_add_(0, torch.from_numpy(pairs.neighbors), -g)
        forces, g = forces_t.numpy(), g.numpy()
        image = pairs.image
        energy = np.bincount(image, atom_energy.detach().numpy(), minlength=len(images))
        energy += np.bincount(image, self.reference_energies[pairs.species], minlength=len(images))
        split = np.cumsum(pairs.n_atoms)[:-1]
        out = Prediction(energy=energy, forces=np.split(forces, split))
        if stress:
            virial = np.zeros((len(images), 3, 3))
            np.add.at(virial, image[pairs.centers], pairs.vectors[:, :, None] * g[:, None, :])
            with np.errstate(divide="ignore", invalid="ignore"):
                s = virial / pairs.volume[:, None, None]
            s = 0.5 * (s + s.transpose(0, 2, 1))
            voigt = s[:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
            voigt[pairs.volume == 0] = np.nan
            out.stress = voigt
        if self.active_sets is not None:
            with torch.no_grad():
                values = self.basis.basis_values(moments.detach())
            gamma = self._grade(values.numpy(), pairs.species)
            out.atom_uncertainty = np.split(gamma, split)
            out.uncertainty = np.array([float(a.max()) if len(a) else 0.0 for a in out.atom_uncertainty])
        return out

    def _grade(self, values: np.ndarray, species: np.ndarray) -> np.ndarray:
        gamma = np.zeros(len(values))
        for s, active in enumerate(self.active_sets or []):
            mask = species == s
            if mask.any():
                gamma[mask] = active.grade(values[mask])
        return gamma

    # -- fitting ---------------------------------------------------------------------------------------

    def fit(self, train: Sequence[Atoms], valid: Sequence[Atoms] | None = None, **settings: Any) -> FitHistory:
        """One weighted ridge solve on energies, forces (and stress); then the MaxVol active set.

        Settings (:class:`MTPFitSettings`): ``energy_weight``, ``force_weight``, ``stress_weight``, ``ridge``,
        ``weight_key``, ``active_set``, ``valid_fraction``, ``chunk_pairs``. ``valid`` (or the ``valid_fraction``
        split) is only evaluated: a closed-form fit has no early stopping. Of the run-time options only ``seed``
        (of that split) matters; ``progress``, ``checkpoint_dir``, ``warm_start``, ``callback`` are accepted.
        """
        from mlpkit.potentials.mtp.fit import fit_linear

        typed, runtime = self.fit_settings(settings)
        train = list(train)
        if not train:
            raise InputError("no training configurations")
        self.check_species(train)
        train, valid = holdout(train, valid, typed.valid_fraction, int(runtime.get("seed") or 0))
        if valid:
            self.check_species(valid)
        return fit_linear(self, train, valid, typed)

    # -- persistence -----------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write ``model.json`` (family, hyperparameters, species, cutoff, metadata) and ``weights.pt``."""
        model_json = {
            "family": self.family,
            "species": list(self.species),
            "cutoff": self.cutoff,
            "hyperparameters": self.hyperparameters,
            "fitted": self.fitted,
            "n_basis": self.basis.n_basis,
            "has_active_set": self.active_sets is not None,
            "metadata": self.metadata,
        }
        arrays = {"coefficients": self.coefficients, "reference_energies": self.reference_energies}
        for s, active in enumerate(self.active_sets or []):
            arrays.update(active.tensors(f"active.{s}"))
        write_model_dir(path, model_json, {k: torch.as_tensor(np.asarray(v)) for k, v in arrays.items()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> MTPPotential:
        """Read a model written by :meth:`save` (arrays through ``torch.load(weights_only=True)``)."""
        meta = read_family_json(path, cls.family)
        pot = cls(meta["species"], **meta["hyperparameters"])
        tensors = {k: v.numpy() for k, v in read_weights(path).items()}
        if tensors["coefficients"].shape != pot.coefficients.shape:
            raise InputError(f"{path}: coefficients {tensors['coefficients'].shape} do not match the basis")
        pot.coefficients = tensors["coefficients"].astype(np.float64)
        pot.reference_energies = tensors["reference_energies"].astype(np.float64)
        if meta.get("has_active_set"):
            pot.active_sets = [ActiveSet.from_tensors(tensors, f"active.{s}") for s in range(len(pot.species))]
        pot.metadata = dict(meta.get("metadata", {}))
        pot.fitted = bool(meta.get("fitted", True))
        pot.path = Path(path)
        return pot

    def __repr__(self) -> str:
        hp = self.hyperparameters
        return (
            f"MTPPotential(species={list(self.species)}, cutoff={self.cutoff}, level={hp['level']}, "
            f"n_basis={self.basis.n_basis}, fitted={self.fitted})"
        )
