"""The Behler-Parrinello network as torch code: descriptor + one network per element, and its exact derivatives.

``AtomicNetworks`` maps a :class:`GraphBatch` to interaction energies; :func:`energy_forces` differentiates it
with autograd (training, GPUs); :func:`kernel_energy_forces` runs the compiled descriptor kernels on the CPU
(prediction and MD).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from mlpkit.descriptors.graph import GraphBatch, GraphConcat
from mlpkit.descriptors.kernel_threads import atom_bounds, pair_topology, symmetry_features, symmetry_forces
from mlpkit.descriptors.symmetry import SymmetryFunctions, SymmetryFunctionSettings
from mlpkit.descriptors.tables import KernelParameters, Workspace
from mlpkit.errors import InputError
from mlpkit.potentials.bpnn.network_kernels import CompiledNetworks
from mlpkit.potentials.bpnn.step_kernels import fused_blocks, step_energy_forces

#: the compiled networks run from this many blocks (threads) on; fewer: torch's (as fast on one thread)
COMPILED_NETWORKS_FROM = 2
#: on several threads, one launch for features, networks and forces (step_kernels) instead of four: the default
#: (MLPKIT_FUSED_STEP=0 restores the separate launches). It equals them to rounding, not bit for bit: the block
#: kernels are fast-math (contraction, reassociation), and LLVM may round one differently inside the one launch
#: (1 ulp of the energy seen; docs/benchmarks/md-speed.md)
FUSED_STEP = os.environ.get("MLPKIT_FUSED_STEP", "1") != "0"

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
        # differentiable in the parameters when training on stress (create_graph), a plain number otherwise
        outer = vectors.detach()[:, :, None] * (grad if create_graph else grad.detach())[:, None, :]  # (P, 3, 3)
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
    networks: CompiledNetworks | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`energy_forces` on the CPU with the compiled descriptor kernels (prediction and MD only).

    The features and their backward pass run in :mod:`mlpkit.descriptors.kernel_threads` on torch's thread count
    (``torch.set_num_threads``), and with ``networks`` given the networks too (:mod:`.network_kernels`, same
    blocks and threads); otherwise (or for a module in training mode: MC-dropout) the networks run in torch
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
    # the pair index by centre and the thread blocks: built once per neighbour list (the MD graph keeps its
    # arrays between Verlet rebuilds, so their identity says whether the list changed)
    topo = ws.topology
    if topo is None or topo.centers is not graph.centers or topo.neighbors is not graph.neighbors or topo.n_atoms != n:
        topo = ws.topology = pair_topology(graph.centers, graph.neighbors, n)
    args = params.args()
    sigma = None
    can_compile = networks is not None and CompiledNetworks.supports(module)
    fused = fused_blocks(topo) if can_compile and FUSED_STEP else 0
    if fused:  # several threads: the whole evaluation in one launch (step_kernels)
        networks.update(module)
        grad = ws.get("grad_features", feats.shape, real)
        cross_grad = ws.get("cross_grad", (graph.vectors.shape[0], 3))
        energy, forces, virial = step_energy_forces(topo, fused, graph.vectors, graph.centers, graph.neighbors,
                                                    graph.species, graph.image, graph.half, graph.n_images, feats,
                                                    moments, networks, args, grad, cross_grad,
                                                    pending=graph.pending)  # fmt: skip
        if stress:
            sigma = _stress(virial, graph.volume)
        return energy, forces, sigma
    if graph.pending is not None:
        graph.pending.fill()
    symmetry_features(graph.vectors, graph.centers, graph.neighbors, graph.species, graph.half, feats, moments, *args,
                      topology=topo)  # fmt: skip
    bounds = atom_bounds(n)
    # on one thread torch's BLAS evaluates the networks as fast as the compiled ones (2.1-2.5 µs/atom); on
    # several, the compiled networks run on blocks of equal atom counts, and dE/dM in the same launch (torch's
    # extra passes do not scale, and its OpenMP pool is not fork-safe)
    compiled = can_compile and len(bounds) - 1 >= COMPILED_NETWORKS_FROM
    if compiled:
        networks.update(module)
        ints, degree, weight, pair_a, pair_b = args[1], args[4], args[5], args[7], args[8]
        grad = ws.get("grad_features", feats.shape, real)
        energy, grad = networks(feats, graph.species, graph.image, graph.n_images, bounds,
                                moments=(moments, ints, degree, weight, pair_a, pair_b), grad=grad)  # fmt: skip
    else:  # torch networks (MC-dropout in training mode, or no compiled networks given)
        g = torch.from_numpy(feats).to(p.dtype).requires_grad_(True)
        image = torch.from_numpy(graph.image)
        with torch.enable_grad():
            e_atom = module.energies_from_features(g, torch.from_numpy(graph.species), fold=True)
            e_image = torch.zeros(graph.n_images, dtype=e_atom.dtype).index_add(0, image, e_atom)
            (grad_g,) = torch.autograd.grad(e_image.sum(), g)
        energy = e_image.detach().double().numpy()
        grad = np.ascontiguousarray(grad_g.detach().numpy(), dtype=real)
    forces = np.empty((n, 3))
    virial = np.empty((graph.n_images, 3, 3))
    cross_grad = ws.get("cross_grad", (graph.vectors.shape[0], 3))
    symmetry_forces(graph.vectors, graph.centers, graph.neighbors, graph.species, graph.image, graph.half, grad,
                    moments, forces, virial, *args, topology=topo, cross_grad=cross_grad,
                    moment_grads=not compiled)  # fmt: skip
    if stress:
        sigma = _stress(virial, graph.volume)
    return energy, forces, sigma


def _stress(virial: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Stress (n_images, 6) eV/Å³ (Voigt, ASE sign) from the virial (n_images, 3, 3) eV; 0 where volume is 0."""
    sym = 0.5 * (virial + virial.transpose(0, 2, 1))
    full = np.where((volume > 0)[:, None, None], sym / np.where(volume > 0, volume, 1.0)[:, None, None], 0.0)
    return full[:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]


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
