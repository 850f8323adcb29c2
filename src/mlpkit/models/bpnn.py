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

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from mlpkit.descriptors.graph import (
    GraphArrays,
    GraphBatch,
    GraphConcat,
    collate,
    concatenate,
    graph_arrays,
    species_index,
)
from mlpkit.descriptors.kernels import (
    KernelParameters,
    Workspace,
    pair_vectors,
    symmetry_features,
    symmetry_forces,
)
from mlpkit.descriptors.neighbors import NeighborList, VerletList, spatial_order
from mlpkit.descriptors.symmetry import SymmetryFunctions, SymmetryFunctionSettings
from mlpkit.errors import InputError, UnsupportedSpeciesError
from mlpkit.models.base import (
    FitHistory,
    Potential,
    Prediction,
    methods_of,
    read_model_json,
    read_weights,
    reference_results,
    register_family,
    training_set_hash,
    write_model_dir,
)

#: Hyperparameters and their defaults (descriptor + networks). Tuned on the water benchmark
#: (docs/benchmarks/bpnn-accuracy.md).
DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    "cutoff": 6.0,
    "n_radial": 16,
    "angular_cutoff": None,
    "n_angular": 6,
    "angular_order": 3,
    "r_min": 0.6,
    "width": 1.0,
    "cutoff_function": "cosine",
    "hidden": (64, 64),
    "activation": "silu",
    "dropout": 0.0,
    "dtype": "float64",
    "device": "cpu",
    "init_seed": 0,
    "verlet_skin": 0.5,
}

_ACTIVATIONS = {
    "tanh": torch.nn.Tanh,
    "silu": torch.nn.SiLU,
    "softplus": torch.nn.Softplus,
    "celu": torch.nn.CELU,
    "gelu": torch.nn.GELU,
}


class AtomicNetworks(torch.nn.Module):
    """Descriptor + per-element networks as one torch module: a :class:`GraphBatch` in, energies out.

    Buffers hold the normalisation (feature mean/std per element, energy scale) and the per-element
    reference energies (float64), so a state dict is the whole fitted model.
    """

    def __init__(self, settings: SymmetryFunctionSettings, hidden: Sequence[int], activation: str, dropout: float):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise InputError(f"activation must be one of {', '.join(_ACTIVATIONS)}, got {activation!r}")
        if not 0.0 <= dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1), got {dropout}")
        self.descriptor = SymmetryFunctions(settings)
        n_species, n_features = self.descriptor.n_species, self.descriptor.n_features
        self.nets = torch.nn.ModuleList()
        for _ in range(n_species):
            layers: list[torch.nn.Module] = []
            width = n_features
            for h in hidden:
                layers += [torch.nn.Linear(width, int(h)), _ACTIVATIONS[activation]()]
                if dropout > 0:
                    layers.append(torch.nn.Dropout(dropout))
                width = int(h)
            layers.append(torch.nn.Linear(width, 1))
            self.nets.append(torch.nn.Sequential(*layers))
        self.register_buffer("feature_mean", torch.zeros(n_species, n_features))
        self.register_buffer("feature_std", torch.ones(n_species, n_features))
        self.register_buffer("energy_scale", torch.ones(()))
        self.register_buffer("reference_energies", torch.zeros(n_species, dtype=torch.float64))

    def features(self, batch: GraphBatch, fast: bool = False) -> torch.Tensor:
        """Raw symmetry functions (N, F)."""
        return self.descriptor(batch.vectors, batch.centers, batch.neighbors, batch.species, batch.half, fast=fast)

    def atomic_energies(
        self, batch: GraphBatch, features: torch.Tensor | None = None, fast: bool = False
    ) -> torch.Tensor:
        """Interaction energy of each atom (N,) in eV, without the reference energies."""
        g = self.features(batch, fast=fast) if features is None else features
        return self.energies_from_features(g, batch.species)

    def energies_from_features(self, g: torch.Tensor, species: torch.Tensor, fold: bool = False) -> torch.Tensor:
        """Interaction energy of each atom (N,) eV from raw features ``g`` (N, F) and species indices (N,).

        ``fold``: fold the standardisation into the first layer, ``W (g - μ)/σ + b = (W/σ) g + (b - W μ/σ)``
        (same function, two fewer passes over (N, F): for prediction on large systems).
        """
        out = torch.zeros(g.shape[0], dtype=g.dtype, device=g.device)
        for s, net in enumerate(self.nets):
            idx = torch.nonzero(species == s).squeeze(1)
            if idx.numel() == 0:
                continue
            if fold:
                first, inv_std = net[0], 1.0 / self.feature_std[s]
                bias = first.bias - first.weight @ (self.feature_mean[s] * inv_std)
                e = net[1:](torch.nn.functional.linear(g[idx], first.weight * inv_std, bias))
            else:
                e = net((g[idx] - self.feature_mean[s]) / self.feature_std[s])
            out = out.index_put((idx,), e.squeeze(1))
        return out * self.energy_scale

    def forward(self, batch: GraphBatch, fast: bool = False) -> torch.Tensor:
        """Interaction energy per configuration (n_images,) eV (reference energies not included)."""
        e_atom = self.atomic_energies(batch, fast=fast)
        return torch.zeros(batch.n_images, dtype=e_atom.dtype, device=e_atom.device).index_add(0, batch.image, e_atom)


def energy_forces(
    module: AtomicNetworks, batch: GraphBatch, *, stress: bool = False, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Interaction energies (n_images,) eV, forces (N, 3) eV/Å and virial-based stress (n_images, 6) eV/Å³.

    Forces: with pair vectors ``v_p = x_j - x_i (+ cell shift)``, ``F_i = Σ_{p: i} dE/dv_p - Σ_{p: j} dE/dv_p``.
    Stress: ``σ = (1/V) Σ_p v_p ⊗ dE/dv_p`` (symmetrised; ASE sign, Voigt xx yy zz yz xz xy); only for
    fully periodic cells (volume > 0), zero rows otherwise.
    """
    vectors = batch.vectors
    if not vectors.requires_grad:
        vectors.requires_grad_(True)
    # forces that are not differentiated again (prediction, MD) take the descriptor's hand-derived backward
    energy = module(batch, fast=not create_graph)
    if vectors.shape[0] == 0:
        grad = torch.zeros_like(vectors)
    else:
        (grad,) = torch.autograd.grad(energy.sum(), vectors, create_graph=create_graph)
    n = batch.species.shape[0]
    forces = torch.zeros(n, 3, dtype=grad.dtype, device=grad.device)
    forces = forces.index_add(0, batch.centers, grad).index_add(0, batch.neighbors, -grad)
    sigma = None
    if stress:
        outer = vectors.detach()[:, :, None] * grad.detach()[:, None, :]  # (P, 3, 3)
        pair_image = batch.image[batch.centers]
        virial = torch.zeros(batch.n_images, 3, 3, dtype=outer.dtype, device=outer.device).index_add(
            0, pair_image, outer
        )
        virial = 0.5 * (virial + virial.transpose(1, 2))
        vol = batch.volume.to(virial.dtype)
        safe = torch.where(vol > 0, vol, torch.ones_like(vol))
        full = virial / safe[:, None, None] * (vol > 0).to(virial.dtype)[:, None, None]
        sigma = full[:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return energy, forces, sigma


def kernel_energy_forces(
    module: AtomicNetworks,
    params: KernelParameters,
    graph: GraphConcat,
    *,
    stress: bool = False,
    workspace: Workspace | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`energy_forces` on the CPU with the compiled descriptor kernels (prediction and MD only).

    The features and their backward pass run in :mod:`mlpkit.descriptors.kernels`; only the networks run in torch
    (in the module's dtype), differentiated once to get dE/dG. Same results as :func:`energy_forces` up to the
    radial tables' interpolation error (~1e-10 relative; float32 models: float32 rounding). Returns numpy arrays:
    energies (n_images,) eV, forces (N, 3) eV/Å, stress (n_images, 6) eV/Å³ or None.
    """
    ws = workspace if workspace is not None else Workspace()
    p = next(module.parameters())
    n = graph.species.shape[0]
    d = module.descriptor
    # float32 models keep the per-atom arrays in float32 (half the memory traffic; sums within a pair pass run
    # in float64 registers); float64 models keep everything in float64
    real = np.float32 if p.dtype == torch.float32 else np.float64
    feats = ws.get("features", (n, d.n_features), real)
    moments = ws.get("moments", (n, d.n_species, max(d.n_angular, 1), d.n_monomials), real)
    args = params.args()
    symmetry_features(graph.vectors, graph.centers, graph.neighbors, graph.species, graph.half, feats, moments, *args)
    g = torch.from_numpy(feats).to(p.dtype).requires_grad_(True)
    image = torch.from_numpy(graph.image)
    with torch.enable_grad():
        e_atom = module.energies_from_features(g, torch.from_numpy(graph.species), fold=True)
        energy = torch.zeros(graph.n_images, dtype=e_atom.dtype).index_add(0, image, e_atom)
        (grad_g,) = torch.autograd.grad(energy.sum(), g)
    forces = np.empty((n, 3))
    virial = np.empty((graph.n_images, 3, 3))
    grad = np.ascontiguousarray(grad_g.detach().numpy(), dtype=real)
    symmetry_forces(graph.vectors, graph.centers, graph.neighbors, graph.species, graph.image, graph.half, grad,
                    moments, forces, virial, *args)  # fmt: skip
    sigma = None
    if stress:
        sym = 0.5 * (virial + virial.transpose(0, 2, 1))
        vol = graph.volume
        full = np.where((vol > 0)[:, None, None], sym / np.where(vol > 0, vol, 1.0)[:, None, None], 0.0)
        sigma = full[:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return energy.detach().double().numpy(), forces, sigma


def _dtype(name: str) -> torch.dtype:
    if name not in ("float32", "float64"):
        raise InputError(f"dtype must be 'float32' or 'float64', got {name!r}")
    return torch.float32 if name == "float32" else torch.float64


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device 'cuda' asked for, but torch sees no CUDA device")
    return torch.device(name)


@register_family
class BPNNPotential(Potential):
    """Behler-Parrinello NNP (see module docstring).

    Parameters (all hyperparameters are saved with the model; defaults in ``DEFAULT_HYPERPARAMETERS``):

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

    def __init__(self, species: Sequence[str], **hyperparameters: Any):
        unknown = set(hyperparameters) - set(DEFAULT_HYPERPARAMETERS)
        if unknown:
            raise InputError(
                f"unknown bpnn hyperparameter(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(sorted(DEFAULT_HYPERPARAMETERS))}"
            )
        hp = {**DEFAULT_HYPERPARAMETERS, **hyperparameters}
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
        self._verlet: VerletList | None = None
        self._sorted_list: tuple[np.ndarray, NeighborList] | None = None
        #: prediction on the CPU through the compiled kernels (``False``: the torch implementation)
        self.compiled = True
        self._kernel_params: KernelParameters | None = None
        self._workspace = Workspace()

    def _use_kernels(self) -> bool:
        return self.compiled and self.device.type == "cpu"

    @property
    def kernel_parameters(self) -> KernelParameters:
        if self._kernel_params is None:
            self._kernel_params = self.module.descriptor.kernel_parameters()
        return self._kernel_params

    # -- data -------------------------------------------------------------------------------------------

    def check_species(self, images: Sequence[Atoms]) -> None:
        """Raise :class:`UnsupportedSpeciesError` for an element the model lacks (vectorised over atoms)."""
        known = {atomic_numbers[s] for s in self.species}
        for i, atoms in enumerate(images):
            extra = set(np.unique(atoms.numbers).tolist()) - known
            if extra:
                names = ", ".join(sorted(chemical_symbols[z] for z in extra))
                raise UnsupportedSpeciesError(
                    f"configuration {i} contains {names}, but this {self.family} potential "
                    f"was trained for {', '.join(self.species)} only"
                )

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
        """One large structure (MD): a Verlet list with a skin, reused until an atom moved > skin/2, over atoms
        relabelled along a space-filling curve at every rebuild (cache-friendly pair passes at any size)."""
        if self._verlet is None:
            self._verlet = VerletList(self.cutoff, skin=self.verlet_skin)
        builds = self._verlet.n_builds
        nl = self._verlet.get(atoms)
        species = species_index(atoms, self.species)
        if self._sorted_list is None or self._verlet.n_builds != builds:
            order = spatial_order(atoms.positions, atoms.cell[:], atoms.pbc)
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            i, j = rank[nl.i], rank[nl.j]
            by_centre = np.argsort(i, kind="stable")
            index = np.int32 if len(order) < 2**31 else np.int64  # int32: less to stream per pass
            self._sorted_list = (
                order,
                NeighborList(
                    np.ascontiguousarray(i[by_centre], dtype=index),
                    np.ascontiguousarray(j[by_centre], dtype=index),
                    np.ascontiguousarray(nl.shifts[by_centre]),
                    nl.half,
                ),
            )
        order, sorted_nl = self._sorted_list
        pos = np.ascontiguousarray(atoms.positions[order], dtype=np.float64)
        cell = np.ascontiguousarray(atoms.cell[:], dtype=np.float64)
        vectors = pair_vectors(pos, sorted_nl.i, sorted_nl.j, sorted_nl.shifts, cell)
        species = species[order]
        volume = float(abs(atoms.cell.volume)) if atoms.pbc.all() else 0.0
        return GraphArrays(species, sorted_nl.i, sorted_nl.j, vectors, volume, sorted_nl.half, order=order)

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
                    self.module, self.kernel_parameters, concat, stress=stress, workspace=self._workspace
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

    def predict_samples(self, images: Sequence[Atoms], n_samples: int, seed: int = 0) -> list[Prediction]:
        """MC-dropout: ``n_samples`` predictions with dropout active (different masks, seeded).

        Needs a model built with ``dropout > 0``.
        """
        if float(self.hyperparameters["dropout"]) <= 0:
            raise InputError("predict_samples needs a model trained with dropout > 0 (hyperparameter 'dropout')")
        images = list(images)
        self.check_species(images)
        out = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module.train()
            try:
                for _ in range(n_samples):
                    out.append(self._predict(images, stress=False))
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

        Settings (see :data:`mlpkit.training.FIT_DEFAULTS` for defaults): ``epochs``, ``force_weight``,
        ``learning_rate``, ``lr_final``, ``scheduler``, ``batch_size``, ``patience``, ``keep`` (``"best"``: weights of
        the best validation epoch; ``"last"``: final weights), ``valid_fraction`` (used when
        ``valid`` is None), ``seed``, ``checkpoint_dir``, ``checkpoint_every``, ``warm_start`` (keep current
        weights and normalisation: continue training), ``progress``.
        """
        from mlpkit.training import FIT_DEFAULTS, Trainer, energy_force_loss

        unknown = set(settings) - set(FIT_DEFAULTS)
        if unknown:
            raise InputError(f"unknown fit setting(s) {', '.join(sorted(unknown))}; known: {', '.join(FIT_DEFAULTS)}")
        cfg = {**FIT_DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
        train = list(train)
        if not train:
            raise InputError("no training configurations")
        self.check_species(train)
        if valid is None and cfg["valid_fraction"] > 0 and len(train) >= 4:
            from mlpkit.data import split_images

            train, valid = split_images(train, [1 - cfg["valid_fraction"], cfg["valid_fraction"]], seed=cfg["seed"])
            if not valid:
                valid = None
        valid = list(valid) if valid else None
        if valid:
            self.check_species(valid)
        warm = bool(cfg["warm_start"]) and self.fitted
        if not warm:
            self._fit_normalisation(train)
        train_data = self._training_items(train)
        valid_data = self._training_items(valid) if valid else None
        force_weight = float(cfg["force_weight"])
        module = self.module

        def loss_fn(items, training: bool):
            batch = self._batch([it[0] for it in items])
            energy, forces, _ = energy_forces(module, batch, create_graph=training)
            e_ref = torch.as_tensor(np.array([it[1] for it in items]), dtype=energy.dtype, device=energy.device)
            f_ref = torch.as_tensor(np.concatenate([it[2] for it in items]), dtype=forces.dtype, device=forces.device)
            return energy_force_loss(energy, e_ref, batch.n_atoms, forces, f_ref, force_weight)

        fingerprint = {
            "family": self.family,
            "hyperparameters": self.hyperparameters,
            "train": training_set_hash(train),
            "valid": training_set_hash(valid) if valid else "",
            "force_weight": force_weight,
            "warm_start": warm,
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

    def _training_items(self, images: Sequence[Atoms]) -> list[tuple[GraphArrays, float, np.ndarray]]:
        """(pairs, interaction energy = E - Σ e_ref, forces) of each labelled configuration."""
        energies, forces = reference_results(images)
        energies = energies - self.reference_energy(images)
        return [(self.graph(a), float(e), f) for a, e, f in zip(images, energies, forces, strict=True)]

    def _fit_normalisation(self, train: Sequence[Atoms]) -> None:
        """Reference energies by least squares on composition, feature mean/std per element, energy scale."""
        energies, forces = reference_results(train)
        counts = np.array([[a.get_chemical_symbols().count(s) for s in self.species] for a in train], dtype=float)
        refs, *_ = np.linalg.lstsq(counts, energies, rcond=None)
        m = self.module
        m.reference_energies = torch.as_tensor(refs, dtype=torch.float64, device=self.device)
        comps = np.concatenate([f.ravel() for f in forces])
        residual = (energies - counts @ refs) / counts.sum(1)
        scale = float(np.sqrt(np.mean(comps**2))) if comps.size else 0.0
        if not scale > 1e-8:
            scale = max(float(np.std(residual)), 1e-3)
        m.energy_scale.fill_(scale)
        sums = torch.zeros(len(self.species), m.descriptor.n_features, dtype=torch.float64)
        sq = torch.zeros_like(sums)
        n = torch.zeros(len(self.species), dtype=torch.float64)
        with torch.no_grad():
            for start in range(0, len(train), 64):
                batch = collate([self.graph(a) for a in train[start : start + 64]], torch.float64)
                g = m.features(_to(batch, m)).double().cpu()
                sp = batch.species.cpu()
                sums.index_add_(0, sp, g)
                sq.index_add_(0, sp, g * g)
                n.index_add_(0, sp, torch.ones_like(sp, dtype=torch.float64))
        mean = sums / n.clamp(min=1)[:, None]
        var = (sq / n.clamp(min=1)[:, None] - mean**2).clamp(min=0)
        std = torch.sqrt(var)
        # constant features (e.g. O-O terms in a single water molecule) carry no information: leave them unscaled
        std = torch.where(std > 1e-6 * (1 + mean.abs()), std, torch.ones_like(std))
        m.feature_mean.copy_(mean.to(m.feature_mean))
        m.feature_std.copy_(std.to(m.feature_std))

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


def _to(batch: GraphBatch, module: torch.nn.Module) -> GraphBatch:
    p = next(module.parameters())
    batch.vectors = batch.vectors.to(dtype=p.dtype, device=p.device)
    for name in ("species", "image", "centers", "neighbors", "n_atoms"):
        setattr(batch, name, getattr(batch, name).to(p.device))
    return batch


def default_hyperparameters(train: Sequence[Atoms], **overrides: Any) -> dict[str, Any]:
    """Hyperparameters chosen from the data: species, and a cutoff that fits the structures.

    Periodic data get the production cutoff (6 Å). For isolated molecules the cutoff is the largest
    interatomic distance in the data plus 0.5 Å (at most 6 Å), so the radial grid resolves bond lengths.
    """
    hp = dict(overrides)
    if "cutoff" not in hp:
        if any(a.pbc.any() for a in train):
            hp["cutoff"] = 6.0
        else:
            dmax = 0.0
            for a in train:
                if len(a) > 1:
                    d = a.get_all_distances()
                    dmax = max(dmax, float(d.max()))
            hp["cutoff"] = float(min(6.0, max(2.0, math.ceil((dmax + 0.5) * 4) / 4)))
    return hp


def species_of(images: Sequence[Atoms]) -> tuple[str, ...]:
    """Elements present in ``images``, sorted by atomic number."""
    found = {s for a in images for s in a.get_chemical_symbols()}
    return tuple(sorted(found, key=lambda s: atomic_numbers[s]))
