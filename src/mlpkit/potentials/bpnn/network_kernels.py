"""The per-element networks of a Behler-Parrinello potential as compiled (numba) block kernels: atomic energies
and dE/dG in one pass per atom, on the same blocks and threads as the descriptor kernels.

Why not torch here: for (N, 104) features and 64-wide layers, torch runs a dozen whole-array passes per element
(gather by species, linear, activation, scatter, and the same backwards), costing 2.5 µs/atom/step on one
thread at 10k atoms (a quarter of a step), and its GNU OpenMP pool hangs in forked children. Per atom, the
weights stay in L1/L2 and the activations in registers; the blocks run on numba's fork-safe workqueue layer
(:mod:`mlpkit.descriptors.kernel_threads`). Used for prediction only (no dropout: a module in training mode,
i.e. MC-dropout, keeps the torch path). Arithmetic in float64 whatever the model's dtype (a float32 model's
weights are exact in float64; results agree with its torch float32 evaluation to float32 precision).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit, prange

from mlpkit.descriptors import atom_kernels as ak
from mlpkit.descriptors import kernel_cache
from mlpkit.descriptors import kernel_threads as kt
from mlpkit.descriptors.kernels import _FASTMATH

kernel_cache.install()  # before any cache=True kernel: one cache stamp over all kernel sources

#: activation codes of the compiled networks (torch module classes of ``network._ACTIVATIONS``)
ACTIVATION_CODES = {"Tanh": 0, "SiLU": 1, "Softplus": 2, "CELU": 3, "GELU": 4}


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _activate(code: int, z: float) -> tuple[float, float]:
    """Activation and its derivative at z (torch defaults: Softplus beta 1 threshold 20, CELU alpha 1, exact GELU)."""
    if code == 1:  # SiLU
        s = 1.0 / (1.0 + math.exp(-z))
        return z * s, s * (1.0 + z * (1.0 - s))
    if code == 0:
        t = math.tanh(z)
        return t, 1.0 - t * t
    if code == 2:
        if z > 20.0:
            return z, 1.0
        return math.log1p(math.exp(z)), 1.0 / (1.0 + math.exp(-z))
    if code == 3:
        if z > 0.0:
            return z, 1.0
        e = math.exp(z)
        return e - 1.0, e
    c = 0.5 * (1.0 + math.erf(z * 0.7071067811865476))
    return z * c, c + z * math.exp(-0.5 * z * z) * 0.3989422804014327


#: atoms of one element evaluated together: each weight row is read once per tile (from L1/L2), not per atom
TILE = 16


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _dots(weights, offset, n_rows, n_cols, X, nt, out) -> None:
    """``out[t, r] = Σ_c A[r, c] X[t, c]`` for t < nt, with A (n_rows, n_cols) stored row-major in ``weights``
    from ``offset``: four rows and two atoms at a time, eight sums in registers, so each element loaded feeds
    two or four multiply-adds (1.4-1.5x faster than four rows of one atom; three atoms: no faster). The loop
    over c vectorises; views keep numba's indices provably non-negative (no wrap-around tests)."""
    r = 0
    while r + 4 <= n_rows:
        w0 = weights[offset + r * n_cols : offset + (r + 1) * n_cols]
        w1 = weights[offset + (r + 1) * n_cols : offset + (r + 2) * n_cols]
        w2 = weights[offset + (r + 2) * n_cols : offset + (r + 3) * n_cols]
        w3 = weights[offset + (r + 3) * n_cols : offset + (r + 4) * n_cols]
        t = 0
        while t + 2 <= nt:
            x, y = X[t], X[t + 1]
            a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = 0.0
            for c in range(n_cols):
                xc, yc = x[c], y[c]
                a0 += w0[c] * xc
                a1 += w1[c] * xc
                a2 += w2[c] * xc
                a3 += w3[c] * xc
                b0 += w0[c] * yc
                b1 += w1[c] * yc
                b2 += w2[c] * yc
                b3 += w3[c] * yc
            out[t, r], out[t, r + 1], out[t, r + 2], out[t, r + 3] = a0, a1, a2, a3
            out[t + 1, r], out[t + 1, r + 1], out[t + 1, r + 2], out[t + 1, r + 3] = b0, b1, b2, b3
            t += 2
        if t < nt:
            x = X[t]
            a0 = a1 = a2 = a3 = 0.0
            for c in range(n_cols):
                xc = x[c]
                a0 += w0[c] * xc
                a1 += w1[c] * xc
                a2 += w2[c] * xc
                a3 += w3[c] * xc
            out[t, r], out[t, r + 1], out[t, r + 2], out[t, r + 3] = a0, a1, a2, a3
        r += 4
    while r < n_rows:
        w0 = weights[offset + r * n_cols : offset + (r + 1) * n_cols]
        for t in range(nt):
            x = X[t]
            a0 = 0.0
            for c in range(n_cols):
                a0 += w0[c] * x[c]
            out[t, r] = a0
        r += 1


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def networks_block(a0, a1, G, species, image, weights, layout, code, scale, energy, grad, image_energy) -> None:
    """Atomic energies ``energy[i]`` (eV) and dE/dG ``grad[i]`` (F,) for a0 <= i < a1, and the block's energy per
    configuration ``image_energy`` (n_images,) (overwritten). Atoms are taken :data:`TILE` of one element at a
    time (a small matrix product per layer: dot products along contiguous rows of W forward, of W^T backward).

    weights: flat float64; layout (n_species, n_layers, 5) int64 rows [offset of W^T (n_in, n_out), offset of
    b (n_out), n_in, n_out, offset of W (n_out, n_in)]; hidden layers are followed by the activation ``code``,
    the last (n_out = 1) not; ``scale``: the energy scale (eV). The standardisation is folded into layer 1.
    """
    n_layers = layout.shape[1]
    width = G.shape[1]
    for s in range(layout.shape[0]):
        for layer in range(n_layers):
            width = max(width, layout[s, layer, 2], layout[s, layer, 3])
    X = np.empty((TILE, width))
    Z = np.empty((TILE, width))
    D = np.empty((n_layers, TILE, width))  # activation derivatives, for the backward
    up = np.empty((TILE, width))
    down = np.empty((TILE, width))
    idx = np.empty(TILE, dtype=np.int64)
    image_energy[:] = 0.0
    F = G.shape[1]
    for s in range(layout.shape[0]):
        i = a0
        while i < a1:
            nt = 0
            while i < a1 and nt < TILE:
                if species[i] == s:
                    idx[nt] = i
                    nt += 1
                i += 1
            if nt == 0:
                break
            for t in range(nt):
                for f in range(F):
                    X[t, f] = G[idx[t], f]
            for layer in range(n_layers):
                wo, bo, n_in, n_out = layout[s, layer, 0], layout[s, layer, 1], layout[s, layer, 2], layout[s, layer, 3]
                # z = W x + b as dot products along W's rows (contiguous, accumulated in registers); views: indices
                # numba knows are non-negative need no wrap-around test, so the loops vectorise
                _dots(weights, layout[s, layer, 4], n_out, n_in, X, nt, Z)
                for t in range(nt):
                    for o in range(n_out):
                        Z[t, o] += weights[bo + o]
                if layer < n_layers - 1:
                    for t in range(nt):
                        for o in range(n_out):
                            a, d = _activate(code, Z[t, o])
                            X[t, o] = a
                            D[layer, t, o] = d
            for t in range(nt):
                e = scale * Z[t, 0]
                energy[idx[t]] = e
                image_energy[image[idx[t]]] += e
                up[t, 0] = scale
            # backward: dE/d(output) = scale, through the layers to dE/dG
            for layer in range(n_layers - 1, -1, -1):
                wo, n_in, n_out = layout[s, layer, 0], layout[s, layer, 2], layout[s, layer, 3]
                _dots(weights, wo, n_in, n_out, up, nt, down)
                if layer > 0:
                    for t in range(nt):
                        for f in range(n_in):
                            up[t, f] = down[t, f] * D[layer - 1, t, f]
            for t in range(nt):
                for f in range(F):
                    grad[idx[t], f] = down[t, f]


@njit(cache=True, parallel=True)
def _networks_parallel(bounds, G, species, image, weights, layout, code, scale, energy, grad, image_energies, M, ints,
                       degree, weight, pair_a, pair_b):  # fmt: skip
    for b in prange(bounds.shape[0] - 1):
        networks_block(bounds[b], bounds[b + 1], G, species, image, weights, layout, code, scale, energy, grad,
                       image_energies[b])  # fmt: skip
        if M.shape[0] > 0:  # dE/dM of the same atoms (needs only their own dE/dG): no second launch
            ak.moment_grads_block(bounds[b], bounds[b + 1], grad, M, ints, degree, weight, pair_a, pair_b)


#: per-block energy rows are this many float64 apart at least (two blocks never write one cache line)
_PAD = 8
_NO_MOMENTS = (np.zeros((0, 1, 1, 1)), np.zeros(4, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0),
               np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))  # fmt: skip


class CompiledNetworks:
    """The networks of an :class:`~mlpkit.potentials.bpnn.network.AtomicNetworks` packed for
    :func:`networks_block` (standardisation folded in), repacked when any parameter or buffer changes."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self.weights = np.zeros(0)
        self.layout = np.zeros((0, 0, 5), dtype=np.int64)
        self.code = 1
        self.scale = 1.0

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    @staticmethod
    def supports(module: torch.nn.Module) -> bool:
        """Linear layers and one of :data:`ACTIVATION_CODES` only, and not in training mode (MC-dropout)."""
        if module.training:
            return False
        for net in module.nets:
            for layer in net:
                if not isinstance(layer, torch.nn.Linear | torch.nn.Dropout) and (
                    type(layer).__name__ not in ACTIVATION_CODES
                ):
                    return False
                if isinstance(layer, torch.nn.Softplus) and (layer.beta != 1 or layer.threshold != 20):
                    return False
                if isinstance(layer, torch.nn.CELU) and layer.alpha != 1:
                    return False
                if isinstance(layer, torch.nn.GELU) and layer.approximate != "none":
                    return False
        return True

    def update(self, module: torch.nn.Module) -> None:
        """Repack if a parameter or buffer was replaced or modified in place (tensor ``_version``)."""
        tensors = [*module.nets.parameters(), module.feature_mean, module.feature_std, module.energy_scale]
        # the key holds the tensors themselves: while it lives, no new tensor can take one of their ids
        key = tuple((t, t._version) for t in tensors)
        if self._key is not None and len(key) == len(self._key):
            if all(a is b and va == vb for (a, va), (b, vb) in zip(key, self._key, strict=True)):
                return
        chunks: list[np.ndarray] = []
        offset = 0
        rows = []
        code = 1
        for s, net in enumerate(module.nets):
            linears = [m for m in net if isinstance(m, torch.nn.Linear)]
            acts = [type(m).__name__ for m in net if type(m).__name__ in ACTIVATION_CODES]
            code = ACTIVATION_CODES[acts[0]] if acts else code
            layer_rows = []
            for k, lin in enumerate(linears):
                w = lin.weight.detach().double().cpu().numpy()
                b = lin.bias.detach().double().cpu().numpy()
                if k == 0:  # W (g - μ)/σ + b = (W/σ) g + (b - W μ/σ)
                    inv_std = 1.0 / module.feature_std[s].detach().double().cpu().numpy()
                    mean = module.feature_mean[s].detach().double().cpu().numpy()
                    b = b - w @ (mean * inv_std)
                    w = w * inv_std
                wt = np.ascontiguousarray(w.T).ravel()
                layer_rows.append([offset, offset + wt.size, w.shape[1], w.shape[0], offset + wt.size + b.size])
                chunks += [wt, b, np.ascontiguousarray(w).ravel()]
                offset += 2 * wt.size + b.size
            rows.append(layer_rows)
        self.weights = np.concatenate(chunks)
        self.layout = np.array(rows, dtype=np.int64)
        self.code = code
        self.scale = float(module.energy_scale.detach().double())
        self._key = key

    def __call__(self, G: np.ndarray, species: np.ndarray, image: np.ndarray, n_images: int,
                 bounds: np.ndarray | None, moments: tuple | None = None,
                 grad: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Energies per configuration (n_images,) eV and dE/dG (N, F) (G's dtype) from features G (N, F);
        ``bounds``: atom blocks, one per thread (None: one block on the calling thread). With ``moments`` =
        ``(M, ints, degree, weight, pair_a, pair_b)`` (:func:`mlpkit.descriptors.atom_kernels.moment_grads_block`'s
        arguments) each block also overwrites its atoms' moments ``M`` with dE/dM, in the same launch. ``grad``:
        a reusable (N, F) output array."""
        n = G.shape[0]
        energy = np.empty(n)
        if grad is None or grad.shape != G.shape or grad.dtype != G.dtype:
            grad = np.empty(G.shape, dtype=G.dtype)
        if bounds is None:
            bounds = np.array([0, n], dtype=np.int64)
        blocks = bounds.shape[0] - 1
        # rows padded apart: each block adds to its row once per atom, a shared cache line would bounce
        image_energies = np.empty((blocks, n_images + _PAD))
        M, ints, degree, weight, pair_a, pair_b = _NO_MOMENTS if moments is None else moments
        if blocks == 1:
            networks_block(0, n, G, species, image, self.weights, self.layout, self.code, self.scale, energy, grad,
                           image_energies[0])  # fmt: skip
            if moments is not None:
                ak.moment_grads_block(0, n, grad, M, ints, degree, weight, pair_a, pair_b)
        else:
            kt._launch(_networks_parallel, blocks, bounds, G, species, image, self.weights, self.layout, self.code,
                       self.scale, energy, grad, image_energies, M, ints, degree, weight, pair_a, pair_b)  # fmt: skip
        return image_energies[:, :n_images].sum(axis=0), grad
