"""Gaussian-approximation potential: a sparse Gaussian process on the SOAP power spectrum.

``E = Σ_i e_0(Z_i) + Σ_i ε_i``, ``ε_i = Σ_m k(p̂_i, s_m) w_m``, ``k(p̂, p̂') = (p̂·p̂')^ζ``

* ``p̂_i``: unit-norm SOAP power spectrum of atom i (featomic, exact position and strain gradients);
* ``s_m``: sparse points of atom i's element, chosen from the training environments (CUR or farthest points);
* ``e_0``: per-element baseline energies, least squares of the training energies on composition;
* ``w``: the projected-process (subset-of-regressors) weights, fitted to total energies AND forces (both linear
  functionals of the local-energy GP) with noise ``energy_sigma·√N`` and ``force_sigma``:
  ``w = A⁻¹ Φᵀ Σ⁻¹ y``, ``A = K_MM/δ² + Φᵀ Σ⁻¹ Φ``, solved in float64 by a QR factorisation of
  ``[Σ^{-1/2}Φ ; Lᵀ/δ]`` (``K_MM + jitter·I = L Lᵀ``), never by forming the normal equations.

Predictive variance (``capabilities.uncertainty = "variance"``): the posterior of the sparse model,
``var f* = φ* A⁻¹ φ*ᵀ = |φ* R⁻¹|²`` with ``R`` from the QR (precomputed at fit time, M x M), for every force
component and the total energy; the energy adds each atom's Nyström residual ``δ²(k(p̂_i,p̂_i) - φ_i K_MM⁻¹ φ_iᵀ)``
(the part of the prior the sparse points cannot represent, summed over atoms as if independent). Cost per call:
the force rows (g, 3, M) (g = centre-neighbour pairs) and one (3N, M) x (M, M) product; set
``potential.variance = False`` for plain MD (energies, forces, stress only: ~3x cheaper on liquid water,
docs/benchmarks/gap.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers

from mlpkit.data.dataset import holdout
from mlpkit.data.records import methods_of, reference_results, species_of, training_set_hash
from mlpkit.errors import InputError
from mlpkit.potentials.base import Capabilities, FitHistory, Potential, Prediction
from mlpkit.potentials.gap.fitting import metrics, solve
from mlpkit.potentials.gap.kernel import contracted, cur_points, design_rows, farthest_points, kernel
from mlpkit.potentials.gap.settings import BATCH_ATOMS, GAPFitSettings, GAPHyperparameters, default_hyperparameters
from mlpkit.potentials.gap.soap import SoapDescriptor
from mlpkit.potentials.gap.twobody import TwoBody
from mlpkit.potentials.store import read_family_json, read_weights, write_model_dir
from mlpkit.schema import validate_settings

#: atoms per descriptor call with gradients: bounds the (g, 3, D) gradients (~50 neighbours per atom in liquid water
#: at 5 Å: ~0.3 GB at D = 540) and the (g, 3, M) force rows of the variance; one larger structure is split by centres


class GAPPotential(Potential):
    """Sparse-GP potential on SOAP (see module docstring); hyperparameters in :class:`GAPHyperparameters`,
    fit settings (noise, jitter) in :class:`GAPFitSettings`.

    Attributes after :meth:`fit`: ``sparse`` (per element (M_s, D) unit power spectra), ``weights`` (per element
    (M_s,)), ``baseline`` (per element eV), ``delta`` (eV), ``posterior_factor`` R⁻¹ (M, M) with A⁻¹ = R⁻¹R⁻ᵀ,
    ``nystrom_factor`` L⁻ᵀ (M, M) with K_MM⁻¹ = L⁻ᵀL⁻¹. ``variance`` (default True): whether :meth:`predict`
    fills ``energy_std`` and ``forces_std``.
    """

    family: ClassVar[str] = "gap"
    capabilities: ClassVar[Capabilities] = Capabilities(uncertainty="variance", fine_tunable=False, fit="closed_form")
    Hyperparameters = GAPHyperparameters
    FitSettings = GAPFitSettings

    def __init__(self, species: Sequence[str], **hyperparameters: Any):
        hp = validate_settings(GAPHyperparameters, hyperparameters, "gap hyperparameter").model_dump()
        if hp["cutoff"] is None:  # built without data: the periodic default
            hp["cutoff"] = 5.0
        if hp["smoothing"] >= hp["cutoff"]:
            raise InputError(f"gap hyperparameter 'smoothing' ({hp['smoothing']} Å) must be below the cutoff")
        self.hyperparameters = hp
        self.species = tuple(sorted(species, key=lambda s: atomic_numbers[s]))
        self.cutoff = float(hp["cutoff"])
        self.zeta = int(hp["zeta"])
        self.descriptor = SoapDescriptor(
            self.species, self.cutoff, hp["max_radial"], hp["max_angular"], hp["atomic_width"], hp["smoothing"]
        )
        n_el, d = len(self.species), self.descriptor.n_features
        self.sparse: list[np.ndarray] = [np.zeros((0, d)) for _ in range(n_el)]
        self.weights: list[np.ndarray] = [np.zeros(0) for _ in range(n_el)]
        self.two_body = (
            TwoBody(self.species, self.cutoff, hp["smoothing"], hp["two_body_width"]) if hp["two_body"] else None
        )
        n_types = self.two_body.n_types if self.two_body else 0
        #: two-body sparse distances (Å) and weights per element pair (empty without the term)
        self.sparse2: list[np.ndarray] = [np.zeros(0) for _ in range(n_types)]
        self.weights2: list[np.ndarray] = [np.zeros(0) for _ in range(n_types)]
        self.delta2 = 1.0
        self.baseline = np.zeros(n_el)
        self.delta = float(hp["delta"]) if hp["delta"] is not None else 1.0
        self.posterior_factor = np.zeros((0, 0))
        self.nystrom_factor = np.zeros((0, 0))
        self.variance = True
        self.fitted = False
        self.metadata: dict[str, Any] = {}

    @classmethod
    def from_data(cls, train: Sequence[Atoms], **hyperparameters: Any) -> GAPPotential:
        """An untrained potential for the elements of ``train`` (cutoff from the data unless given)."""
        return cls(species_of(train), **default_hyperparameters(train, **hyperparameters))

    # -- helpers ----------------------------------------------------------------------------------------

    def _counts(self, images: Sequence[Atoms]) -> np.ndarray:
        """(n, n_elements) atoms of each element in each configuration."""
        numbers = np.array([atomic_numbers[s] for s in self.species])
        return np.array([np.bincount(np.searchsorted(numbers, a.numbers), minlength=len(numbers)) for a in images])

    @property
    def n_sparse(self) -> list[int]:
        return [len(s) for s in self.sparse]

    def _batches(self, images: list[Atoms], limit: int):
        """(start, stop) of consecutive runs of ``images`` holding at most ``limit`` atoms (at least one image)."""
        start = 0
        while start < len(images):
            stop, n = start, 0
            while stop < len(images) and (stop == start or n + len(images[stop]) <= limit):
                n += len(images[stop])
                stop += 1
            yield start, stop
            start = stop

    def rows(self, images: list[Atoms], blocks, *, forces: bool = True, strain: bool = False) -> dict[str, np.ndarray]:
        """Kernel rows of a batch (SOAP columns, then two-body columns): ``energy`` (n, M), ``forces``
        (n_atoms, 3, M), ``virial`` (n, 3, 3, M), ``local`` (n_atoms, M_soap); ``blocks`` from the descriptor."""
        sizes = np.array([len(a) for a in images])
        offset = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        out = design_rows(
            blocks, self.sparse, self.zeta, len(images), offset, int(sizes.sum()), forces=forces, strain=strain
        )
        if self.two_body is not None:
            extra = self.two_body.rows(images, self.sparse2, forces=forces, strain=strain)
            for key, value in extra.items():
                out[key] = np.concatenate([out[key], value], axis=-1)
        return out

    @property
    def all_weights(self) -> np.ndarray:
        """(M,) the weights of every column: SOAP element after element, then two-body pair after pair."""
        return np.concatenate([*self.weights, *self.weights2])

    # -- prediction -------------------------------------------------------------------------------------

    def predict(self, images: Sequence[Atoms], *, stress: bool = False) -> Prediction:
        """Energies (eV), forces (eV/Å), with ``stress=True`` stress (eV/Å³, Voigt, NaN rows for cells not periodic
        in all directions) and, while ``variance`` is on, ``energy_std`` (eV) and ``forces_std`` (eV/Å)."""
        images = list(images)
        self.check_species(images)
        if not self.fitted:
            raise InputError("this gap potential has not been fitted: a GP has no weights before its solve")
        n = len(images)
        energy = np.zeros(n)
        forces: list[np.ndarray] = [np.zeros((len(a), 3)) for a in images]
        stresses = np.full((n, 6), np.nan) if stress else None
        e_std = np.zeros(n) if self.variance else None
        f_std = [np.zeros((len(a), 3)) for a in images] if self.variance else None
        periodic = np.array([bool(a.pbc.all()) for a in images], dtype=bool)
        for group in (np.flatnonzero(periodic), np.flatnonzero(~periodic)):
            subset = [images[i] for i in group]
            with_strain = stress and len(group) > 0 and bool(periodic[group[0]])
            for lo, hi in self._batches(subset, BATCH_ATOMS):
                idx = group[lo:hi]
                out = self._predict_batch(subset[lo:hi], with_strain)
                energy[idx] = out["energy"]
                sizes = np.cumsum([0] + [len(images[i]) for i in idx])
                for k, i in enumerate(idx):
                    forces[i] = out["forces"][sizes[k] : sizes[k + 1]]
                    if self.variance:
                        f_std[i] = out["forces_std"][sizes[k] : sizes[k + 1]]
                if self.variance:
                    e_std[idx] = out["energy_std"]
                if with_strain:
                    volume = np.array([images[i].get_volume() for i in idx])
                    v = out["virial"] / volume[:, None, None]  # ASE stress = (1/V) dE/dε
                    stresses[idx] = v[:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        energy += self._counts(images) @ self.baseline if n else 0.0
        return Prediction(energy=energy, forces=forces, stress=stresses, energy_std=e_std, forces_std=f_std)

    def _predict_batch(self, images: list[Atoms], strain: bool) -> dict[str, np.ndarray]:
        sizes = np.array([len(a) for a in images])
        offset = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        n_atoms = int(sizes.sum())
        blocks = self.descriptor.compute(images, gradients=True, strain=strain)
        if not self.variance:
            e, f, v = contracted(
                blocks, self.sparse, self.weights, self.zeta, len(images), offset, n_atoms, strain=strain
            )
            if self.two_body is not None:  # a few distances per pair: the full rows are cheap
                extra = self.two_body.rows(images, self.sparse2, strain=strain)
                w2 = np.concatenate(self.weights2)
                e, f = e + extra["energy"] @ w2, f + extra["forces"] @ w2
                v = v + extra["virial"] @ w2 if strain else v
            return {"energy": e, "forces": f, "virial": v}
        rows = self.rows(images, blocks, strain=strain)
        w = self.all_weights
        out = {"energy": rows["energy"] @ w, "forces": rows["forces"] @ w}
        if strain:
            out["virial"] = rows["virial"] @ w
        pf = self.posterior_factor
        f_var = np.sum((rows["forces"].reshape(-1, len(w)) @ pf) ** 2, axis=1).reshape(n_atoms, 3)
        out["forces_std"] = np.sqrt(f_var)
        e_var = np.sum((rows["energy"] @ pf) ** 2, axis=1)
        # Nyström residual of each atom's local energy: δ² (k(p̂,p̂) - φ K_MM⁻¹ φᵀ), k(p̂,p̂) = 1 (0 for a lone atom)
        self_k = np.zeros(n_atoms)
        for part in blocks:
            for b in part.values():
                self_k[offset[b.system] + b.atom] = np.sum(b.values**2, axis=1) ** self.zeta
        q = np.sum((rows["local"] @ self.nystrom_factor) ** 2, axis=1)
        residual = np.clip(self_k - q, 0.0, None) * self.delta**2
        system_of_atom = np.repeat(np.arange(len(images)), sizes)
        e_var += np.bincount(system_of_atom, weights=residual, minlength=len(images))
        out["energy_std"] = np.sqrt(e_var)
        return out

    def descriptors(self, images: Sequence[Atoms]) -> list[np.ndarray]:
        """Unit-norm SOAP power spectrum of every atom (the kernel's own space): list of (n_atoms_i, D) arrays,
        atom order of each structure (active learning's diversity selection reads these)."""
        images = list(images)
        self.check_species(images)
        sizes = np.array([len(a) for a in images])
        offset = np.concatenate([[0], np.cumsum(sizes)])
        flat = np.zeros((int(offset[-1]), self.descriptor.n_features))
        for lo, hi in self._batches(images, BATCH_ATOMS):
            for b in self.descriptor.compute(images[lo:hi], gradients=False)[0].values():
                flat[offset[lo + b.system] + b.atom] = b.values
        return np.split(flat, offset[1:-1])

    def select(self, images: Sequence[Atoms], k: int) -> list[int]:
        """Indices of ``k`` of ``images`` to label next: greedily the largest max-atomic force σ, each pick added to
        the posterior as if labelled before the next (no labels needed; near copies of a pick lose their σ).
        See :mod:`mlpkit.potentials.gap.selection`."""
        from mlpkit.potentials.gap.selection import greedy_variance_selection

        return greedy_variance_selection(self, images, k)

    # -- fitting ----------------------------------------------------------------------------------------

    def fit(self, train: Sequence[Atoms], valid: Sequence[Atoms] | None = None, **settings: Any) -> FitHistory:
        """Baseline energies, sparse points, and the sparse-GP weights and posterior, in one solve.

        Settings (:class:`GAPFitSettings`): ``energy_sigma`` (eV/atom), ``force_sigma`` (eV/Å), ``jitter``,
        ``valid_fraction``. ``valid`` (given, or split off by ``valid_fraction`` with ``seed``) is
        only evaluated and reported: a closed-form solve has no epochs to stop. The other run-time options
        (``progress``, ``checkpoint_dir``, ``warm_start``, ``callback``) are accepted and have nothing to do here: the
        fit is deterministic and always from scratch.
        """
        typed, runtime = self.fit_settings(settings)
        cfg = typed.model_dump()
        train = list(train)
        if not train:
            raise InputError("no training configurations")
        self.check_species(train)
        train, valid = holdout(train, valid, cfg["valid_fraction"], runtime.get("seed", 0))
        t0 = time.perf_counter()
        energies, ref_forces = reference_results(train)
        counts = self._counts(train)
        self.baseline, *_ = np.linalg.lstsq(counts.astype(float), energies, rcond=None)
        residual = energies - counts @ self.baseline
        comps = np.concatenate([f.ravel() for f in ref_forces])
        if self.hyperparameters["delta"] is None:
            rms_f = float(np.sqrt(np.mean(comps**2))) if comps.size else 0.0
            rms_e = float(np.sqrt(np.mean(residual**2 / counts.sum(1))))
            self.delta = max(rms_f * 1.0, rms_e, 1e-3)  # eV: the energy a 1 Å displacement brings
        self._choose_sparse(train)
        if self.two_body is not None:
            self.sparse2 = self.two_body.grid(train, int(self.hyperparameters["two_body_points"]))
            d2 = self.hyperparameters["two_body_delta"]
            self.delta2 = float(d2) if d2 is not None else self.delta
        t_sparse = time.perf_counter() - t0
        phi, y = self._design(train, residual, ref_forces, cfg)
        t_design = time.perf_counter() - t0 - t_sparse
        self._solve(phi, y, cfg["jitter"])
        self.fitted = True
        seconds = time.perf_counter() - t0
        history = FitHistory(seconds=seconds, best_epoch=1, stopped_because="closed-form solve")
        train_metrics = metrics(self, train)
        epoch = {f"train_{k}": v for k, v in train_metrics.items()}
        if valid:
            self.check_species(list(valid))
            epoch.update({f"valid_{k}": v for k, v in metrics(self, list(valid)).items()})
            history.best_valid_loss = epoch["valid_forces_rmse"]
        history.epochs.append(epoch)
        methods = methods_of(train)
        self.metadata.update(
            {
                "method": methods[0] if len(methods) == 1 else methods,
                "training_set_hash": training_set_hash(train),
                "n_train": len(train),
                "n_valid": len(valid) if valid else 0,
                "fit_settings": cfg,
                "fit_seconds": seconds,
                "timings": {"sparse_points": t_sparse, "design": t_design, "solve": seconds - t_sparse - t_design},
                "n_sparse": dict(zip(self.species, self.n_sparse, strict=True)),
                "n_observations": len(y),
                "delta": self.delta,
                "metrics": epoch,
            }
        )
        return history

    def _choose_sparse(self, train: list[Atoms]) -> None:
        """Per element, ``n_sparse`` environments of the training set by CUR or farthest-point sampling."""
        envs: dict[int, list[np.ndarray]] = {i: [] for i in range(len(self.species))}
        for lo, hi in self._batches(train, 16 * BATCH_ATOMS):  # no gradients: small arrays
            for idx, b in self.descriptor.compute(train[lo:hi], gradients=False)[0].items():
                envs[idx].append(b.values)
        n = int(self.hyperparameters["n_sparse"])
        method = self.hyperparameters["sparse_method"]
        for idx, parts in envs.items():
            x = np.concatenate(parts) if parts else np.zeros((0, self.descriptor.n_features))
            x = x[np.linalg.norm(x, axis=1) > 0]  # lone atoms carry no environment
            x = np.unique(np.round(x, 12), axis=0) if len(x) else x  # duplicates would make K_MM singular
            pick = farthest_points(x, n) if method == "fps" else cur_points(x, n)
            self.sparse[idx] = x[pick]

    def _design(
        self, train: list[Atoms], residual: np.ndarray, forces: list[np.ndarray], cfg: dict
    ) -> tuple[np.ndarray, np.ndarray]:
        """Noise-weighted rows Σ^{-1/2}Φ (n_obs, M) and targets Σ^{-1/2}y: one energy row per frame, then 3N force
        rows."""
        phis, ys = [], []
        for lo, hi in self._batches(train, BATCH_ATOMS):
            part = train[lo:hi]
            sizes = np.array([len(a) for a in part])
            rows = self.rows(part, self.descriptor.compute(part, gradients=True))
            sigma_e = cfg["energy_sigma"] * np.sqrt(sizes)
            phis.append(rows["energy"] / sigma_e[:, None])
            ys.append(residual[lo:hi] / sigma_e)
            phis.append(rows["forces"].reshape(-1, rows["forces"].shape[-1]) / cfg["force_sigma"])
            ys.append(np.concatenate(forces[lo:hi]).ravel() / cfg["force_sigma"])
        return np.concatenate(phis), np.concatenate(ys)

    def _solve(self, phi: np.ndarray, y: np.ndarray, jitter: float) -> None:
        """Weights, posterior factor R⁻¹ and Nyström factor L⁻ᵀ (SOAP block) from the noise-weighted rows."""
        blocks = [(kernel(s, s, self.zeta), self.delta, True) for s in self.sparse]
        if self.two_body is not None:
            blocks += [(self.two_body.kmm(p), self.delta2, False) for p in self.sparse2]
        w, self.posterior_factor, self.nystrom_factor = solve(phi, y, blocks, jitter)
        m_soap = sum(self.n_sparse)
        self.weights = np.split(w[:m_soap], np.cumsum(self.n_sparse)[:-1])
        self.weights2 = np.split(w[m_soap:], np.cumsum([len(p) for p in self.sparse2])[:-1]) if self.sparse2 else []

    # -- persistence ------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """``model.json`` (hyperparameters, species, cutoff, δ, metadata) and ``weights.pt`` (sparse points,
        weights, baseline, posterior and Nyström factors as float64 tensors)."""
        model_json = {
            "family": self.family,
            "species": list(self.species),
            "cutoff": self.cutoff,
            "hyperparameters": self.hyperparameters,
            "delta": self.delta,
            "delta2": self.delta2,
            "fitted": self.fitted,
            "metadata": self.metadata,
        }
        tensors = {f"sparse.{s}": torch.from_numpy(x) for s, x in zip(self.species, self.sparse, strict=True)}
        tensors.update({f"weights.{s}": torch.from_numpy(w) for s, w in zip(self.species, self.weights, strict=True)})
        tensors["baseline"] = torch.from_numpy(np.asarray(self.baseline, dtype=np.float64))
        for t, (p, w) in enumerate(zip(self.sparse2, self.weights2, strict=True)):
            tensors[f"two_body.{t}"] = torch.from_numpy(np.asarray(p, dtype=np.float64))
            tensors[f"two_body_weights.{t}"] = torch.from_numpy(np.asarray(w, dtype=np.float64))
        tensors["posterior_factor"] = torch.from_numpy(self.posterior_factor)
        tensors["nystrom_factor"] = torch.from_numpy(self.nystrom_factor)
        write_model_dir(path, model_json, tensors)

    @classmethod
    def load(cls, path: str | os.PathLike, variance: bool = True) -> GAPPotential:
        """Read a model written by :meth:`save` (tensors through ``torch.load(weights_only=True)``); ``variance=False``
        for plain MD without the predictive variance."""
        meta = read_family_json(path, cls.family)
        pot = cls(meta["species"], **meta["hyperparameters"])
        state = read_weights(path)
        pot.sparse = [state[f"sparse.{s}"].numpy() for s in pot.species]
        pot.weights = [state[f"weights.{s}"].numpy() for s in pot.species]
        pot.baseline = state["baseline"].numpy()
        pot.posterior_factor = state["posterior_factor"].numpy()
        pot.nystrom_factor = state["nystrom_factor"].numpy()
        pot.delta = float(meta["delta"])
        pot.delta2 = float(meta.get("delta2", pot.delta))
        n_types = pot.two_body.n_types if pot.two_body else 0
        pot.sparse2 = [state[f"two_body.{t}"].numpy() for t in range(n_types)]
        pot.weights2 = [state[f"two_body_weights.{t}"].numpy() for t in range(n_types)]
        pot.fitted = bool(meta.get("fitted", True))
        pot.metadata = dict(meta.get("metadata", {}))
        pot.variance = bool(variance)
        pot.path = Path(path)
        return pot

    def __repr__(self) -> str:
        return (
            f"GAPPotential(species={list(self.species)}, cutoff={self.cutoff}, zeta={self.zeta}, "
            f"features={self.descriptor.n_features}, n_sparse={self.n_sparse}, fitted={self.fitted})"
        )
