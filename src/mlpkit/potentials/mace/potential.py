"""MACE (mace-torch 0.3.16) as an mlpkit family: built from typed hyperparameters, trained by mlpkit's Trainer.

``E = Σ_i [ σ · MACE_i + μ ] + Σ_i e_ref(Z_i)``

* ``MACE_i``: the per-atom readouts of a ``ScaleShiftMACE`` (equivariant message passing, ``num_interactions``
  layers of range ``r_max``), with its own per-element energies set to zero;
* ``σ, μ``: the ScaleShiftMACE scale and shift, from the data: RMS of the training force components (eV/Å) and the
  mean per-atom energy left after the reference energies (eV/atom), as MACE's CLI does;
* ``e_ref``: per-element reference energies (eV), mlpkit's least-squares fit of the training energies on
  composition, kept in float64 outside the network so that float32 models keep the total energy's precision.

Forces are -dE/dx by autograd; stress (periodic cells) is (1/V) dE/dε through a symmetric cell strain. Storage is
``model.json`` (hyperparameters, species, data-derived numbers) plus a plain state_dict read with
``weights_only=True``: never a pickled module (a MACE pickled under one e3nn version does not load under another).
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

from mlpkit.data.records import methods_of, reference_results, species_of, training_set_hash
from mlpkit.errors import InputError, UnsupportedSpeciesError
from mlpkit.potentials.base import Capabilities, FitHistory, Potential, Prediction
from mlpkit.potentials.mace.model import (
    Graph,
    build_model,
    collate,
    energy_forces,
    make_graph,
    resolve_device,
    set_avg_num_neighbors,
    torch_dtype,
)
from mlpkit.potentials.mace.settings import MACEFitSettings, MACEHyperparameters
from mlpkit.potentials.store import read_model_json, read_weights, write_model_dir
from mlpkit.schema import validate_settings
from mlpkit.training import FIT_DEFAULTS, Trainer, energy_force_loss


class MACEPotential(Potential):
    """A ScaleShiftMACE trained and stored by mlpkit (see the module docstring).

    ``species``: element symbols (sorted by atomic number); ``hyperparameters``: :class:`MACEHyperparameters`.
    A model built without :meth:`fit` has random weights, zero reference energies and unit scale: fine for timing.
    """

    family: ClassVar[str] = "mace"
    capabilities: ClassVar[Capabilities] = Capabilities(uncertainty="none", fine_tunable=True, fit="epochs")
    Hyperparameters = MACEHyperparameters
    FitSettings = MACEFitSettings

    def __init__(self, species: Sequence[str], **hyperparameters: Any):
        hp = validate_settings(MACEHyperparameters, hyperparameters, "mace hyperparameter").model_dump()
        self.hyperparameters = hp
        self.species = tuple(species)
        self.cutoff = float(hp["r_max"])
        self.dtype = torch_dtype(hp["dtype"])
        self.device = resolve_device(hp["device"])
        # until a fit or from_data sets it: a typical count for molecular liquids (only scales the messages)
        avg = hp["avg_num_neighbors"] if hp["avg_num_neighbors"] is not None else 10.0
        self.module = build_model(self.species, hp, avg).to(self.device)
        self.module.eval()
        #: per-element reference energies (eV), float64, in the order of ``species``
        self.reference_energies = np.zeros(len(self.species))
        self.metadata: dict[str, Any] = {}
        self.fitted = False

    @classmethod
    def from_data(cls, train: Sequence[Atoms], **hyperparameters: Any) -> MACEPotential:
        """An untrained potential for the elements of ``train``; ``avg_num_neighbors`` from the data unless given."""
        train = list(train)
        hp = validate_settings(MACEHyperparameters, hyperparameters, "mace hyperparameter").model_dump()
        if hp["avg_num_neighbors"] is None:
            hp["avg_num_neighbors"] = average_neighbors(train, float(hp["r_max"]))
        return cls(species_of(train), **hp)

    # -- data -------------------------------------------------------------------------------------------

    def check_species(self, images: Sequence[Atoms]) -> None:
        """Raise :class:`UnsupportedSpeciesError` for an element the model lacks (vectorised over atoms)."""
        known = set(self.species)
        for i, atoms in enumerate(images):
            extra = set(np.unique(atoms.get_chemical_symbols()).tolist()) - known
            if extra:
                raise UnsupportedSpeciesError(
                    f"configuration {i} contains {', '.join(sorted(extra))}, but this mace potential "
                    f"was trained for {', '.join(self.species)} only"
                )

    def graph(self, atoms: Atoms) -> Graph:
        return make_graph(atoms, self.species, self.cutoff)

    def _batch(self, graphs: Sequence[Graph]) -> dict:
        return collate(graphs, len(self.species), self.dtype, self.device)

    def reference_energy(self, images: Sequence[Atoms]) -> np.ndarray:
        """Σ of per-element reference energies of each configuration (n,) eV (float64)."""
        return np.array([self.reference_energies[self.graph_species(a)].sum() for a in images])

    def graph_species(self, atoms: Atoms) -> np.ndarray:
        """Index into ``species`` of each atom (n,) (the elements were checked before)."""
        z_to_index = np.zeros(119, dtype=np.int64)
        z_to_index[[atomic_numbers[s] for s in self.species]] = np.arange(len(self.species))
        return z_to_index[atoms.numbers]

    # -- prediction -------------------------------------------------------------------------------------

    def predict(self, images: Sequence[Atoms], *, stress: bool = False, batch_atoms: int = 5000) -> Prediction:
        """Energies (n,) eV, forces list of (n_i, 3) eV/Å and, with ``stress=True``, stress (n, 6) eV/Å³ (Voigt
        xx yy zz yz xz xy, ASE sign; NaN rows for cells not periodic in all three directions).

        Configurations are batched up to ``batch_atoms`` atoms per network call.
        """
        images = list(images)
        self.check_species(images)
        if not images:
            return Prediction(np.zeros(0), [], np.zeros((0, 6)) if stress else None)
        if self.module.training:
            self.module.eval()
        graphs = [self.graph(a) for a in images]
        energies, forces, stresses = [], [], []
        start = 0
        while start < len(graphs):
            stop, n = start, 0
            while stop < len(graphs) and (stop == start or n + len(graphs[stop].species) <= batch_atoms):
                n += len(graphs[stop].species)
                stop += 1
            part = graphs[start:stop]
            e, f, s = energy_forces(self.module, self._batch(part), stress=stress)
            energies.append(e.detach().cpu().double().numpy())
            counts = np.cumsum([len(g.species) for g in part])[:-1]
            forces.extend(np.split(f.detach().cpu().double().numpy(), counts))
            if stress:
                s = s.detach().cpu().double().numpy()
                voigt = s[:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
                voigt[~np.array([g.periodic for g in part])] = np.nan
                stresses.append(voigt)
            start = stop
        refs = np.array([self.reference_energies[g.species].sum() for g in graphs])
        energy = np.concatenate(energies) + refs
        return Prediction(energy=energy, forces=forces, stress=np.concatenate(stresses) if stress else None)

    def descriptors(self, images: Sequence[Atoms], batch_atoms: int = 5000) -> list[np.ndarray]:
        """Invariant per-atom features: the scalar (0e) channels of every layer's node features, list of
        (n_atoms_i, n_features) arrays (what active learning's diversity selection compares)."""
        images = list(images)
        self.check_species(images)
        columns, offset = [], 0
        for product in self.module.products:
            irreps = product.linear.irreps_out
            for (_, ir), cut in zip(irreps, irreps.slices(), strict=True):
                if ir.l == 0 and ir.p == 1:
                    columns.append(np.arange(offset + cut.start, offset + cut.stop))
            offset += irreps.dim
        cols = torch.as_tensor(np.concatenate(columns), device=self.device)
        graphs = [self.graph(a) for a in images]
        out, start = [], 0
        with torch.no_grad():
            while start < len(graphs):
                stop, n = start, 0
                while stop < len(graphs) and (stop == start or n + len(graphs[stop].species) <= batch_atoms):
                    n += len(graphs[stop].species)
                    stop += 1
                feats = self.module(self._batch(graphs[start:stop]), compute_force=False)["node_feats"]
                feats = feats[:, cols].double().cpu().numpy()
                out.extend(np.split(feats, np.cumsum([len(g.species) for g in graphs[start:stop]])[:-1]))
                start = stop
        return out

    # -- fitting ----------------------------------------------------------------------------------------

    def fit(self, train: Sequence[Atoms], valid: Sequence[Atoms] | None = None, **settings: Any) -> FitHistory:
        """Fit reference energies, neighbour normalisation, scale and shift, then train on energies and forces.

        Settings: :class:`MACEFitSettings` (epochs, force_weight, learning_rate, lr_final, scheduler, batch_size,
        keep, valid_fraction, ...) and the run-time options ``seed``, ``progress``, ``checkpoint_dir`` (resumable),
        ``warm_start`` (keep the current weights and normalisation: continue or fine-tune), ``callback``.
        """
        typed, runtime = self.fit_settings(settings)
        cfg = {**FIT_DEFAULTS, **typed.model_dump(), **runtime}
        if cfg["stress_weight"] > 0:
            raise InputError("mace does not fit stress yet: set stress_weight to 0 (bpnn, mtp and snap fit it)")
        train, valid = self.training_split(train, valid, cfg["valid_fraction"], cfg["seed"])
        warm = bool(cfg["warm_start"]) and self.fitted
        if not warm:
            self._fit_normalisation(train)
        train_items = self._training_items(train)
        valid_items = self._training_items(valid) if valid else None
        force_weight = float(cfg["force_weight"])
        force_relative = float(cfg.get("force_relative", 0.0))
        module = self.module

        def loss_fn(items, training: bool):
            data = self._batch([it[0] for it in items])
            energy, forces, _ = energy_forces(module, data, training=training)
            e_ref = torch.as_tensor(np.array([it[1] for it in items]), dtype=energy.dtype, device=energy.device)
            f_ref = torch.as_tensor(np.concatenate([it[2] for it in items]), dtype=forces.dtype, device=forces.device)
            n_atoms = torch.as_tensor([len(it[0].species) for it in items], device=energy.device)
            return energy_force_loss(energy, e_ref, n_atoms, forces, f_ref, force_weight, force_relative=force_relative)

        fingerprint = {
            "family": self.family,
            "hyperparameters": self.hyperparameters,
            "reference_energies": self.reference_energies.tolist(),
            "train": training_set_hash(train),
            "valid": training_set_hash(valid) if valid else "",
            "force_weight": force_weight,
            "warm_start": warm,
            **({"force_relative": force_relative} if force_relative > 0 else {}),
        }
        history = Trainer(module, loss_fn, train_items, valid_items, cfg, fingerprint=fingerprint).run()
        module.eval()
        self._refit_reference_energies(train)
        self.fitted = True
        methods = methods_of(train)
        self.metadata.update(
            {
                "method": methods[0] if len(methods) == 1 else methods,
                "training_set_hash": training_set_hash(train),
                "n_train": len(train),
                "n_valid": len(valid) if valid else 0,
                "fit_settings": {k: v for k, v in cfg.items() if k not in ("progress", "checkpoint_dir", "callback")},
                "fit_seconds": history.seconds,
                "best_epoch": history.best_epoch,
                "stopped_because": history.stopped_because,
                "metrics": dict(history.epochs[history.best_epoch - 1]) if history.best_epoch > 0 else {},
                "mace_torch_version": _mace_version(),
            }
        )
        return history

    def _training_items(self, images: Sequence[Atoms]) -> list[tuple[Graph, float, np.ndarray]]:
        """(graph, interaction energy = E - Σ e_ref (eV), forces (n, 3) eV/Å) of each labelled configuration."""
        energies, forces = reference_results(images)
        energies = energies - self.reference_energy(images)
        return [(self.graph(a), float(e), f) for a, e, f in zip(images, energies, forces, strict=True)]

    def _fit_normalisation(self, train: Sequence[Atoms]) -> None:
        """Reference energies by least squares on composition; avg_num_neighbors, scale and shift from ``train``."""
        energies, forces = reference_results(train)
        counts = self._composition(train)
        refs, *_ = np.linalg.lstsq(counts, energies, rcond=None)
        self.reference_energies = np.asarray(refs, dtype=np.float64)
        residual = (energies - counts @ refs) / counts.sum(1)
        comps = np.concatenate([f.ravel() for f in forces])
        scale = float(np.sqrt(np.mean(comps**2))) if comps.size else 0.0
        if not scale > 1e-8:  # no forces to scale by (all zero): the spread of the per-atom energies
            scale = max(float(np.std(residual)), 1e-3)
        avg = average_neighbors(train, self.cutoff)
        self.hyperparameters["avg_num_neighbors"] = avg
        set_avg_num_neighbors(self.module, avg)
        # the readouts have no bias, so the fresh network's mean per-atom output would stay as a constant energy
        # offset that training removes only slowly: the shift takes it out (mean residual minus that output)
        with torch.no_grad():
            self.module.scale_shift.scale.fill_(scale)
            self.module.scale_shift.shift.fill_(0.0)
        network = self._interaction_energies(train)
        with torch.no_grad():
            self.module.scale_shift.shift.fill_(float(np.mean(residual - network / counts.sum(1))))

    def _refit_reference_energies(self, train: Sequence[Atoms]) -> None:
        """Reference energies corrected by least squares on composition to what the trained network leaves.

        Forces do not see a per-element constant, and with MACE's force weight the energy term moves it only slowly:
        the network ends with a near-constant per-atom offset (0.16 eV/atom on 12 water frames) that this closed
        form removes without changing any force.
        """
        energies, _ = reference_results(train)
        counts = self._composition(train)
        left = energies - self._interaction_energies(train) - counts @ self.reference_energies
        # a correction of least norm: after fine-tuning on few compositions, the directions those data do not
        # determine keep their previous values
        correction, *_ = np.linalg.lstsq(counts, left, rcond=None)
        self.reference_energies = self.reference_energies + correction

    def _composition(self, images: Sequence[Atoms]) -> np.ndarray:
        """Atoms of each element (n, n_species), float."""
        n = len(self.species)
        return np.stack([np.bincount(self.graph_species(a), minlength=n) for a in images]).astype(float)

    def _interaction_energies(self, images: Sequence[Atoms], batch_atoms: int = 5000) -> np.ndarray:
        """The network's energies (n,) eV (no reference energies, no forces)."""
        out, start = [], 0
        graphs = [self.graph(a) for a in images]
        with torch.no_grad():
            while start < len(graphs):
                stop, n = start, 0
                while stop < len(graphs) and (stop == start or n + len(graphs[stop].species) <= batch_atoms):
                    n += len(graphs[stop].species)
                    stop += 1
                res = self.module(self._batch(graphs[start:stop]), compute_force=False)
                out.append(res["interaction_energy"].double().cpu().numpy())
                start = stop
        return np.concatenate(out)

    # -- persistence ------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """``model.json`` (family, hyperparameters incl. avg_num_neighbors, species, cutoff, metadata) and
        ``weights.pt`` (the ScaleShiftMACE state_dict and the float64 reference energies: tensors only)."""
        model_json = {
            "family": self.family,
            "species": list(self.species),
            "cutoff": self.cutoff,
            "hyperparameters": self.hyperparameters,
            "fitted": self.fitted,
            "metadata": self.metadata,
        }
        tensors = {
            "model": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},
            "reference_energies": torch.as_tensor(self.reference_energies, dtype=torch.float64),
        }
        write_model_dir(path, model_json, tensors)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None, dtype: str | None = None) -> MACEPotential:
        """Read a model written by :meth:`save` (tensors through ``torch.load(weights_only=True)``, never a pickle).

        ``device`` / ``dtype`` override the saved ones (e.g. ``dtype="float32"`` for faster MD).
        """
        meta = read_model_json(path)
        if meta.get("family") != cls.family:
            raise InputError(f"{path} holds a {meta.get('family')!r} model, not {cls.family!r}")
        hp = dict(meta["hyperparameters"])
        if dtype is not None:
            hp["dtype"] = dtype
        if device is not None:
            hp["device"] = device
        elif str(hp.get("device", "cpu")).startswith("cuda") and not torch.cuda.is_available():
            hp["device"] = "cpu"
        pot = cls(meta["species"], **hp)
        state = read_weights(path)
        pot.module.load_state_dict(state["model"])
        pot.reference_energies = state["reference_energies"].double().numpy().copy()
        pot.metadata = dict(meta.get("metadata", {}))
        pot.fitted = bool(meta.get("fitted", True))
        pot.path = Path(path)
        return pot

    @classmethod
    def import_foreign(cls, path: str | os.PathLike, *, trust_pickle: bool = False, **options: Any) -> MACEPotential:
        """Convert a MACE ``.model`` file (a pickled module written by mace-torch) into an mlpkit potential.

        Such a file is a Python pickle: loading it runs whatever code it names, with your user's rights. Pass
        ``trust_pickle=True`` only for a file you made yourself or got from a source you trust; then save the
        result with :meth:`save` and use that from then on (plain tensors, safe to load). ``options``: ``device``,
        ``dtype`` of the converted model.
        """
        from mlpkit.potentials.mace.foreign import import_mace_model

        return import_mace_model(cls, path, trust_pickle=trust_pickle, **options)

    def __repr__(self) -> str:
        hp = self.hyperparameters
        return (
            f"MACEPotential(species={list(self.species)}, r_max={self.cutoff}, channels={hp['channels']}, "
            f"max_L={hp['max_L']}, num_interactions={hp['num_interactions']}, fitted={self.fitted})"
        )


def average_neighbors(images: Sequence[Atoms], r_max: float) -> float:
    """Mean number of neighbours within ``r_max`` Å per atom over ``images`` (1.0 if there are none)."""
    from mlpkit.descriptors.neighbors import neighbor_list

    pairs = sum(len(neighbor_list(a, r_max, full=True)) for a in images)
    atoms = sum(len(a) for a in images)
    return float(pairs / atoms) if pairs > 0 else 1.0


def _mace_version() -> str:
    from mace import __version__

    return str(__version__)
