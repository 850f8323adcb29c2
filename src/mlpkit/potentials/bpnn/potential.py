"""Behler-Parrinello neural-network potential: symmetry functions → one network per element → sum.

``E = Σ_i [ σ · NN_{Z_i}((G_i - μ_{Z_i}) / s_{Z_i}) ] + Σ_i e_ref(Z_i)``

* ``G_i``: atom-centred symmetry functions (:mod:`mlpkit.descriptors.symmetry`), radial G2 per element and
  factorised angular G5 per element pair;
* ``μ, s``: per-element feature mean and standard deviation of the training data;
* ``σ``: RMS of the training force components (so networks work on numbers of order one);
* ``e_ref``: per-element reference energies from a least-squares fit of the training energies on composition
  (done before training, so the networks learn only the interaction part).

Forces and stress are exact gradients (autograd with respect to the pair vectors). Dropout between hidden
layers (hyperparameter ``dropout``) gives MC-dropout uncertainty through :meth:`BPNNPotential.predict_samples`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from ase import Atoms

from mlpkit.data.records import methods_of, reference_results, reference_stress, species_of, training_set_hash
from mlpkit.descriptors.graph import GraphArrays, GraphBatch, collate, concatenate, graph_arrays, species_index
from mlpkit.descriptors.symmetry import SymmetryFunctionSettings
from mlpkit.descriptors.tables import KernelParameters, Workspace
from mlpkit.errors import InputError
from mlpkit.potentials.base import Capabilities, FitHistory, Potential, Prediction
from mlpkit.potentials.bpnn.md_graph import MDGraph
from mlpkit.potentials.bpnn.network import AtomicNetworks, _device, _dtype, energy_forces, kernel_energy_forces
from mlpkit.potentials.bpnn.network_kernels import CompiledNetworks
from mlpkit.potentials.bpnn.normalisation import fit_normalisation
from mlpkit.potentials.bpnn.settings import BPNNHyperparameters, default_hyperparameters
from mlpkit.potentials.store import read_family_json, read_weights, write_model_dir
from mlpkit.schema import validate_settings
from mlpkit.training import FIT_DEFAULTS, Trainer, TrainerSettings, energy_force_loss


class BPNNPotential(Potential):
    """Behler-Parrinello NNP (see module docstring).

    Parameters (all saved with the model; defaults and descriptions in :class:`BPNNHyperparameters`):

    species:          element symbols the model handles
    cutoff:           radial cutoff (Å)
    n_radial:         Gaussian G2 centres per element
    angular_cutoff:   cutoff of the angular functions (Å; ``None``: min(cutoff, 4))
    n_angular:        Gaussian radial parts of the G5 functions per element pair (0 disables them)
    angular_order:    highest power of cos θ (0..6)
    r_min:            first Gaussian centre (Å)
    width:            Gaussian width in units of the centre spacing
    cutoff_function:  ``"cosine"`` or ``"polynomial"``
    hidden:           widths of the hidden layers of each element's network
    activation:       ``silu`` (default), ``tanh``, ``softplus``, ``celu``, ``gelu``
    dropout:          dropout probability after each hidden layer (0: none; > 0 enables MC-dropout)
    dtype:            ``"float64"`` (default; exact derivatives for tests) or ``"float32"`` (about 2x faster MD)
    device:           ``"cpu"``, ``"cuda"`` or ``"auto"``
    init_seed:        seed of the random initial weights
    verlet_skin:      skin (Å) of the neighbour list kept between calls on one large structure (MD)

    A model built without :meth:`fit` has random weights and unit normalisation: fine for timing, not for
    physics.
    """

    family: ClassVar[str] = "bpnn"
    capabilities: ClassVar[Capabilities] = Capabilities(
        uncertainty="none", fine_tunable=True, fit="epochs", samples=True
    )
    Hyperparameters = BPNNHyperparameters
    FitSettings = TrainerSettings

    def __init__(self, species: Sequence[str], **hyperparameters: Any):
        hp = validate_settings(BPNNHyperparameters, hyperparameters, "bpnn hyperparameter").model_dump()
        if hp["cutoff"] is None:  # built without data (timing, tests): the production cutoff
            hp["cutoff"] = 6.0
        self.verlet_skin = float(hp["verlet_skin"])
        hp["hidden"] = [int(h) for h in hp["hidden"]]
        settings = SymmetryFunctionSettings(
            species=tuple(species),
            cutoff=float(hp["cutoff"]),
            n_radial=int(hp["n_radial"]),
            angular_cutoff=None if hp["angular_cutoff"] is None else float(hp["angular_cutoff"]),
            n_angular=int(hp["n_angular"]),
            angular_order=int(hp["angular_order"]),
            r_min=float(hp["r_min"]),
            width=float(hp["width"]),
            cutoff_function=str(hp["cutoff_function"]),
        )
        hp["angular_cutoff"] = settings.angular_cutoff
        self.hyperparameters = hp
        self.species = settings.species
        self.cutoff = settings.cutoff
        self.dtype = _dtype(hp["dtype"])
        self.device = _device(str(hp["device"]))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(hp["init_seed"]))
            self.module = AtomicNetworks(settings, hp["hidden"], hp["activation"], float(hp["dropout"]))
        self.module.to(device=self.device, dtype=self.dtype)
        self.module.reference_energies = self.module.reference_energies.double()
        self.module.eval()
        self.metadata: dict[str, Any] = {}
        self.fitted = False
        #: pairs of the structure an MD run is moving (see :mod:`mlpkit.potentials.bpnn.md_graph`)
        self.md_graph: MDGraph | None = None
        #: prediction on the CPU through the compiled kernels (``False``: the torch implementation)
        self.compiled = True
        self._kernel_params: KernelParameters | None = None
        self._workspace = Workspace()
        #: the networks packed for the compiled kernels (repacked when the weights change)
        self._networks = CompiledNetworks()

    @classmethod
    def from_data(cls, train: Sequence[Atoms], **hyperparameters: Any) -> BPNNPotential:
        """An untrained potential for the elements of ``train`` (cutoff from the data unless given)."""
        return cls(species_of(train), **default_hyperparameters(train, **hyperparameters))

    def _use_kernels(self) -> bool:
        return self.compiled and self.device.type == "cpu"

    @property
    def kernel_parameters(self) -> KernelParameters:
        if self._kernel_params is None:
            self._kernel_params = self.module.descriptor.kernel_parameters()
        return self._kernel_params

    # -- data -------------------------------------------------------------------------------------------

    def graph(self, atoms: Atoms) -> GraphArrays:
        """Pairs of one configuration (raises UnsupportedSpeciesError for unknown elements)."""
        return graph_arrays(atoms, self.species, self.cutoff)

    def _batch(self, parts: Sequence[GraphArrays]) -> GraphBatch:
        return collate(parts, self.dtype, self.device)

    def _graphs_for_prediction(self, images: Sequence[Atoms]) -> list[GraphArrays]:
        if len(images) == 1 and len(images[0]) >= 200:
            return [self._md_graph(images[0])]
        return [self.graph(a) for a in images]

    def _md_graph(self, atoms: Atoms) -> GraphArrays:
        if self.md_graph is None or self.md_graph.key != (self.species, self.cutoff, self.verlet_skin):
            self.md_graph = MDGraph(self.species, self.cutoff, self.verlet_skin)
        # the compiled kernels compute the pair vectors in their own launch (graph.pending)
        return self.md_graph.get(atoms, defer_vectors=self._use_kernels())

    def share_neighbors(self, others: Sequence[Potential]) -> None:
        """Let every potential of ``others`` with the same species, cutoff and skin use this one's MD graph."""
        if self.md_graph is None:
            self.md_graph = MDGraph(self.species, self.cutoff, self.verlet_skin)
        for other in others:
            if isinstance(other, BPNNPotential) and other.md_graph_key() == self.md_graph.key:
                other.md_graph = self.md_graph

    def md_graph_key(self) -> tuple:
        return (self.species, self.cutoff, self.verlet_skin)

    def reference_energy(self, images: Sequence[Atoms]) -> np.ndarray:
        """Σ of per-element reference energies of each configuration (n,) eV."""
        ref = self.module.reference_energies.detach().cpu().numpy()
        return np.array([float(ref[species_index(a, self.species)].sum()) for a in images])

    # -- prediction -------------------------------------------------------------------------------------

    def predict(self, images: Sequence[Atoms], *, stress: bool = False, batch_atoms: int = 20000) -> Prediction:
        """Energies (eV), forces (eV/Å) and, with ``stress=True``, stress (eV/Å³, Voigt) of each configuration.

        Stress rows are NaN for configurations that are not periodic in all three directions.
        """
        images = list(images)
        self.check_species(images)
        if not images:
            return Prediction(np.zeros(0), [], np.zeros((0, 6)) if stress else None)
        if self.module.training:  # eval() walks every submodule: not on every MD step
            self.module.eval()
        with self._workspace.lock:  # one prediction at a time per potential: its scratch arrays are shared
            return self._predict(images, stress=stress, batch_atoms=batch_atoms)

    def _predict(self, images: list[Atoms], *, stress: bool, batch_atoms: int = 20000) -> Prediction:
        graphs = self._graphs_for_prediction(images)
        energies, forces, stresses = [], [], []
        start = 0
        while start < len(graphs):
            stop, n = start, 0
            while stop < len(graphs) and (stop == start or n + len(graphs[stop].species) <= batch_atoms):
                n += len(graphs[stop].species)
                stop += 1
            if self._use_kernels():
                concat = concatenate(graphs[start:stop])
                e, f, s = kernel_energy_forces(
                    self.module,
                    self.kernel_parameters,
                    concat,
                    stress=stress,
                    workspace=self._workspace,
                    networks=self._networks,
                )
                volume = concat.volume
            else:
                batch = self._batch(graphs[start:stop])
                et, ft, st = energy_forces(self.module, batch, stress=stress)
                e, f = et.detach().cpu().double().numpy(), ft.detach().cpu().double().numpy()
                s = None if st is None else st.detach().cpu().double().numpy()
                volume = batch.volume.cpu().numpy()
            energies.append(e)
            offsets = np.cumsum([0] + [len(g.species) for g in graphs[start:stop]])
            for g, a, b in zip(graphs[start:stop], offsets[:-1], offsets[1:], strict=True):
                if g.order is None:
                    forces.append(f[a:b])
                else:  # back to the structure's atom order
                    unsorted = np.empty_like(f[a:b])
                    unsorted[g.order] = f[a:b]
                    forces.append(unsorted)
            if stress:
                s[volume == 0] = np.nan
                stresses.append(s)
            start = stop
        energy = np.concatenate(energies) + self.reference_energy(images)
        return Prediction(energy=energy, forces=forces, stress=np.concatenate(stresses) if stress else None)

    def predict_samples(
        self, images: Sequence[Atoms], n_samples: int, seed: int = 0, *, stress: bool = False
    ) -> list[Prediction]:
        """MC-dropout: ``n_samples`` predictions with dropout active (different masks, seeded).

        Needs a model built with ``dropout > 0``.
        """
        if float(self.hyperparameters["dropout"]) <= 0:
            raise InputError("predict_samples needs a model trained with dropout > 0 (hyperparameter 'dropout')")
        images = list(images)
        self.check_species(images)
        out = []
        with self._workspace.lock, torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module.train()
            try:
                for _ in range(n_samples):
                    out.append(self._predict(images, stress=stress))
            finally:
                self.module.eval()
        return out

    def descriptors(self, images: Sequence[Atoms]) -> list[np.ndarray]:
        """Standardised features of each configuration: list of (n_atoms_i, n_features) arrays."""
        images = list(images)
        self.check_species(images)
        out = []
        with torch.no_grad():
            for atoms in images:
                batch = self._batch([self.graph(atoms)])
                g = self.module.features(batch)
                sp = batch.species
                x = (g - self.module.feature_mean[sp]) / self.module.feature_std[sp]
                out.append(x.cpu().double().numpy())
        return out

    # -- fitting ----------------------------------------------------------------------------------------

    def fit(self, train: Sequence[Atoms], valid: Sequence[Atoms] | None = None, **settings: Any) -> FitHistory:
        """Fit reference energies and normalisation, then train the networks on energies and forces.

        Settings (:class:`mlpkit.training.TrainerSettings`, with defaults and descriptions): ``epochs``,
        ``force_weight``, ``learning_rate``, ``lr_final``, ``scheduler``, ``batch_size``, ``patience``, ``keep``
        (``"best"``: weights of the best validation epoch; ``"last"``: final weights), ``valid_fraction`` (used
        when ``valid`` is None), ``seed``, ``checkpoint_dir``, ``checkpoint_every``, ``warm_start`` (keep current
        weights and normalisation: continue training), ``progress``.
        """
        typed, runtime = self.fit_settings(settings)
        cfg = {**FIT_DEFAULTS, **typed.model_dump(), **runtime}
        train, valid = self.training_split(train, valid, cfg["valid_fraction"], cfg["seed"])
        warm = bool(cfg["warm_start"]) and self.fitted
        if not warm:
            self._fit_normalisation(train)
        train_data = self._training_items(train)
        valid_data = self._training_items(valid) if valid else None
        force_weight = float(cfg["force_weight"])
        stress_weight = float(cfg["stress_weight"])
        force_relative = float(cfg["force_relative"])
        module = self.module

        def loss_fn(items, training: bool):
            batch = self._batch([it[0] for it in items])
            has = np.array([it[3] is not None for it in items])
            want = stress_weight > 0 and has.any()
            energy, forces, stress = energy_forces(module, batch, stress=want, create_graph=training)
            e_ref = torch.as_tensor(np.array([it[1] for it in items]), dtype=energy.dtype, device=energy.device)
            f_ref = torch.as_tensor(np.concatenate([it[2] for it in items]), dtype=forces.dtype, device=forces.device)
            s_ref = None
            if want:
                rows = torch.as_tensor(np.flatnonzero(has), device=energy.device)
                stress = stress[rows]
                s_ref = torch.as_tensor(
                    np.stack([it[3] for it in items if it[3] is not None]), dtype=stress.dtype, device=stress.device
                )
            return energy_force_loss(
                energy, e_ref, batch.n_atoms, forces, f_ref, force_weight, stress, s_ref, stress_weight, force_relative
            )

        fingerprint = {
            "family": self.family,
            "hyperparameters": self.hyperparameters,
            "train": training_set_hash(train),
            "valid": training_set_hash(valid) if valid else "",
            "force_weight": force_weight,
            "warm_start": warm,
            # only when used, so checkpoints written before stress could be fitted still resume
            **({"stress_weight": stress_weight} if stress_weight > 0 else {}),
            **({"force_relative": force_relative} if force_relative > 0 else {}),
        }
        trainer = Trainer(module, loss_fn, train_data, valid_data, cfg, fingerprint=fingerprint)
        history = trainer.run()
        module.eval()
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
            }
        )
        return history

    def _training_items(self, images: Sequence[Atoms]) -> list[tuple[GraphArrays, float, np.ndarray, Any]]:
        """(pairs, interaction energy = E - Σ e_ref, forces, stress (6,) eV/Å³ or None) of each labelled
        configuration; stress only for fully periodic cells whose label has one."""
        energies, forces = reference_results(images)
        energies = energies - self.reference_energy(images)
        stresses = [reference_stress(a) for a in images]
        return [(self.graph(a), float(e), f, s) for a, e, f, s in zip(images, energies, forces, stresses, strict=True)]

    def _fit_normalisation(self, train: Sequence[Atoms]) -> None:
        """Reference energies, feature mean/std per element, energy scale (:func:`.normalisation.fit_normalisation`)."""
        fit_normalisation(self.module, self.species, train, self.graph, self.device,
                          float(self.hyperparameters.get("feature_std_floor", 0.0)))  # fmt: skip

    # -- persistence ------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write ``model.json`` (family, hyperparameters, species, cutoff, metadata) and ``weights.pt``."""
        model_json = {
            "family": self.family,
            "species": list(self.species),
            "cutoff": self.cutoff,
            "hyperparameters": self.hyperparameters,
            "fitted": self.fitted,
            "metadata": self.metadata,
        }
        tensors = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        write_model_dir(path, model_json, tensors)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None, dtype: str | None = None) -> BPNNPotential:
        """Read a model written by :meth:`save` (tensors through ``torch.load(weights_only=True)``).

        ``device`` / ``dtype`` override the saved ones, e.g. ``dtype="float32"`` for faster MD with a model trained
        in float64.
        """
        meta = read_family_json(path, cls.family)
        hp = dict(meta["hyperparameters"])
        if dtype is not None:
            hp["dtype"] = dtype
        if device is not None:
            hp["device"] = device
        elif str(hp.get("device", "cpu")).startswith("cuda") and not torch.cuda.is_available():
            hp["device"] = "cpu"
        pot = cls(meta["species"], **hp)
        state = read_weights(path)
        pot.module.load_state_dict(state)
        pot.module.reference_energies = pot.module.reference_energies.double()
        pot.metadata = dict(meta.get("metadata", {}))
        pot.fitted = bool(meta.get("fitted", True))
        pot.path = Path(path)
        return pot

    def __repr__(self) -> str:
        hp = self.hyperparameters
        return (
            f"BPNNPotential(species={list(self.species)}, cutoff={self.cutoff}, "
            f"features={self.module.descriptor.n_features}, hidden={hp['hidden']}, fitted={self.fitted})"
        )
