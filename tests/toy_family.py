"""A toy family written the way a third party would: one module, one registration, nothing else touched.

``toy``: a pair potential linear in its coefficients, E = Σ_pairs Σ_k c_{ab,k} g_k(r) f_c(r) + Σ_i e_ref(Z_i), with
Gaussian radial functions g_k and a cosine cutoff f_c, fitted by Bayesian linear regression on energies and forces.
Its posterior covariance gives a real (if crude) predictive variance of energies and forces, so it can drive active
learning alone (capabilities.uncertainty = "variance").
"""

from __future__ import annotations

import itertools
import os
import time

import numpy as np
import torch
from pydantic import Field
from vesin import NeighborList

from mlpkit.data.records import methods_of, reference_results, species_of, training_set_hash
from mlpkit.potentials import Capabilities, FitHistory, Potential, Prediction, Settings
from mlpkit.potentials.store import read_model_json, read_weights, write_model_dir


class ToyHyperparameters(Settings):
    cutoff: float = Field(3.0, gt=0, description="pair cutoff (Å)")
    n_basis: int = Field(8, ge=1, description="Gaussian radial functions per element pair")
    r_min: float = Field(0.7, gt=0, description="first Gaussian centre (Å)")


class ToyFitSettings(Settings):
    energy_sigma: float = Field(1e-3, gt=0, description="energy noise per atom (eV)")
    force_sigma: float = Field(0.05, gt=0, description="force noise per component (eV/Å)")
    prior: float = Field(10.0, gt=0, description="prior standard deviation of each coefficient (eV)")


class ToyPotential(Potential):
    family = "toy"
    capabilities = Capabilities(uncertainty="variance", fit="closed_form")
    Hyperparameters = ToyHyperparameters
    FitSettings = ToyFitSettings

    def __init__(self, species, **hyperparameters):
        self.hp = ToyHyperparameters(**hyperparameters)
        self.species = tuple(species)
        self.cutoff = self.hp.cutoff
        self.pairs = list(itertools.combinations_with_replacement(range(len(self.species)), 2))
        self.n_features = len(self.pairs) * self.hp.n_basis + len(self.species)
        self.coef = np.zeros(self.n_features)
        self.cov = np.eye(self.n_features) * 100.0
        self.metadata: dict = {}

    @classmethod
    def from_data(cls, train, **hyperparameters):
        return cls(species_of(train), **hyperparameters)

    # -- features: per configuration, φ (F,) and dφ/dx (N, 3, F) ----------------------------------------

    def _features(self, atoms):
        n, F, nb = len(atoms), self.n_features, self.hp.n_basis
        idx = np.array([self.species.index(s) for s in atoms.get_chemical_symbols()])
        nl = NeighborList(cutoff=self.cutoff, full_list=False)
        cell = atoms.cell[:] if atoms.pbc.any() else np.zeros((3, 3))
        i, j, d = nl.compute(atoms.positions, cell, bool(atoms.pbc.any()), quantities="ijD")
        r = np.linalg.norm(d, axis=1)
        centres = np.linspace(self.hp.r_min, self.cutoff, nb)
        width = (self.cutoff - self.hp.r_min) / nb
        gauss = np.exp(-(((r[:, None] - centres) / width) ** 2))  # (P, nb)
        dgauss = -2 * (r[:, None] - centres) / width**2 * gauss
        fc = 0.5 * (np.cos(np.pi * r / self.cutoff) + 1)
        dfc = -0.5 * np.pi / self.cutoff * np.sin(np.pi * r / self.cutoff)
        value = gauss * fc[:, None]
        dvalue = dgauss * fc[:, None] + gauss * dfc[:, None]  # d/dr, (P, nb)
        a, b = np.minimum(idx[i], idx[j]), np.maximum(idx[i], idx[j])
        pair_index = {p: k for k, p in enumerate(self.pairs)}
        block = np.array([pair_index[(x, y)] for x, y in zip(a, b, strict=True)], dtype=int).reshape(-1)
        cols = block[:, None] * nb + np.arange(nb)  # (P, nb)
        phi = np.zeros(F)
        np.add.at(phi, cols, value)
        phi[len(self.pairs) * nb :] = np.bincount(idx, minlength=len(self.species))
        unit = d / np.where(r > 0, r, 1.0)[:, None]  # dr/dx_j
        grad = np.zeros((n, 3, F))
        contrib = unit[:, :, None] * dvalue[:, None, :]  # (P, 3, nb)
        for axis in range(3):
            np.add.at(grad[:, axis, :], (j[:, None], cols), contrib[:, axis, :])
            np.add.at(grad[:, axis, :], (i[:, None], cols), -contrib[:, axis, :])
        return phi, grad, (d, cols, dvalue, unit)

    # -- the protocol ------------------------------------------------------------------------------------

    def fit(self, train, valid=None, **settings):
        typed, _ = self.fit_settings(settings)
        start = time.perf_counter()
        train = list(train)
        self.check_species(train)
        energies, forces = reference_results(train)
        rows, targets, weights = [], [], []
        for atoms, e, f in zip(train, energies, forces, strict=True):
            phi, grad, _ = self._features(atoms)
            rows.append(phi[None])
            targets.append([e])
            weights.append([1.0 / (typed.energy_sigma * len(atoms))])
            rows.append(-grad.reshape(-1, self.n_features))
            targets.append(f.reshape(-1))
            weights.append(np.full(f.size, 1.0 / typed.force_sigma))
        X, y, w = np.concatenate(rows), np.concatenate(targets), np.concatenate(weights)
        A = (X * w[:, None] ** 2).T @ X + np.eye(self.n_features) / typed.prior**2
        self.cov = np.linalg.inv(A)
        self.coef = self.cov @ ((X * w[:, None] ** 2).T @ y)
        self.metadata.update(
            {"method": methods_of(train)[0], "training_set_hash": training_set_hash(train), "n_train": len(train)}
        )
        return FitHistory(seconds=time.perf_counter() - start, stopped_because="solved")

    def predict(self, images, *, stress=False):
        images = list(images)
        self.check_species(images)
        energy, forces, e_std, f_std, stresses = [], [], [], [], []
        for atoms in images:
            phi, grad, (d, cols, dvalue, unit) = self._features(atoms)
            if stress:
                sigma = np.full(6, np.nan)
                if atoms.pbc.all():  # σ = (1/V) Σ_pairs d ⊗ dE/dd (ASE sign), symmetrised
                    de_dd = (dvalue * self.coef[cols]).sum(axis=1)[:, None] * unit
                    virial = d.T @ de_dd
                    full = 0.5 * (virial + virial.T) / atoms.get_volume()
                    sigma = full[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
                stresses.append(sigma)
            energy.append(phi @ self.coef)
            forces.append(-grad @ self.coef)
            e_std.append(np.sqrt(max(phi @ self.cov @ phi, 0.0)))
            g = grad.reshape(-1, self.n_features)
            f_std.append(np.sqrt(np.maximum(np.einsum("kf,fg,kg->k", g, self.cov, g), 0)).reshape(-1, 3))
        return Prediction(
            np.array(energy),
            forces,
            np.array(stresses).reshape(-1, 6) if stress else None,
            energy_std=np.array(e_std),
            forces_std=f_std,
        )

    def save(self, path):
        write_model_dir(
            path,
            {"family": self.family, "species": list(self.species), "cutoff": self.cutoff,
             "hyperparameters": self.hp.model_dump(), "metadata": self.metadata},
            {"coef": torch.from_numpy(self.coef), "cov": torch.from_numpy(self.cov)},
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | os.PathLike):
        meta = read_model_json(path)
        pot = cls(meta["species"], **meta["hyperparameters"])
        w = read_weights(path)
        pot.coef, pot.cov = w["coef"].numpy(), w["cov"].numpy()
        pot.metadata = meta["metadata"]
        return pot
