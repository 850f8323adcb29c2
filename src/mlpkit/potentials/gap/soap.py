"""The SOAP power spectrum of every atom, normalised, with its exact position and strain gradients (featomic).

For each element present, :meth:`SoapDescriptor.compute` returns a :class:`SpeciesBlock`: the unit-norm power
spectrum ``p̂_i = p_i / |p_i|`` of each atom of that element (n, D) and, when asked, its derivatives

* ``dp̂_i/dr_a`` for every (centre i, neighbour a) pair within the cutoff (self included): (g, 3, D), Å⁻¹;
* ``dp̂_i/dε`` with respect to the symmetric strain of a periodic cell: (n, 3, 3, D), dimensionless,

so energies, forces and virials of a kernel model are linear in its weights. The descriptor has the same
properties for every structure (all neighbour-element pairs, zeros where absent), so kernels between structures
of different composition compare like with like.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

#: centres per featomic call on one large structure: bounds the memory of the position gradients
#: (g x 3 x D doubles; ~50 neighbours per atom in liquid water at 5 Å)
CHUNK_ATOMS = 256


@dataclass
class SpeciesBlock:
    """Descriptors of every atom of one element in a batch of structures.

    values:       (n, D) unit-norm power spectra
    system:       (n,) index of each atom's structure in the batch
    atom:         (n,) index of each atom within its structure
    grad_sample:  (g,) row of ``values`` each position-gradient entry belongs to (None without gradients)
    grad_atom:    (g,) index (within its structure) of the atom a moved
    grad:         (g, 3, D) dp̂_i/dr_a, Å⁻¹
    strain:       (n, 3, 3, D) dp̂_i/dε (None unless asked)
    """

    values: np.ndarray
    system: np.ndarray
    atom: np.ndarray
    grad_sample: np.ndarray | None = None
    grad_atom: np.ndarray | None = None
    grad: np.ndarray | None = None
    strain: np.ndarray | None = None


class SoapDescriptor:
    """featomic's ``SoapPowerSpectrum`` with fixed properties for a set of elements.

    species:       element symbols
    cutoff:        radial cutoff (Å), with a shifted-cosine smoothing of width ``smoothing`` (Å) before it
    max_radial:    highest radial index n (GTO basis: max_radial + 1 radial functions)
    max_angular:   highest angular momentum l
    atomic_width:  Gaussian width of each neighbour's density (Å)
    """

    def __init__(
        self,
        species: Sequence[str],
        cutoff: float,
        max_radial: int,
        max_angular: int,
        atomic_width: float,
        smoothing: float,
    ):
        import metatensor
        from featomic import SoapPowerSpectrum

        self.species = tuple(species)
        self.numbers = np.array([atomic_numbers[s] for s in self.species], dtype=np.int32)
        self.calculator = SoapPowerSpectrum(
            cutoff={"radius": float(cutoff), "smoothing": {"type": "ShiftedCosine", "width": float(smoothing)}},
            density={"type": "Gaussian", "width": float(atomic_width)},
            basis={
                "type": "TensorProduct",
                "max_angular": int(max_angular),
                "radial": {"type": "Gto", "max_radial": int(max_radial)},
            },
        )
        pairs = [(a, b) for i, a in enumerate(self.numbers) for b in self.numbers[i:]]
        self._pairs = metatensor.Labels(["neighbor_1_type", "neighbor_2_type"], np.array(pairs, dtype=np.int32))
        n_pairs = len(pairs)
        self.n_features = n_pairs * (int(max_radial) + 1) ** 2 * (int(max_angular) + 1)

    def compute(
        self, images: Sequence[Atoms], *, gradients: bool = True, strain: bool = False
    ) -> dict[int, SpeciesBlock]:
        """Descriptors of ``images`` per element index (into ``species``); ``strain`` needs periodic cells.

        A single structure larger than :data:`CHUNK_ATOMS` is computed in chunks of centres.
        """
        images = list(images)
        if len(images) == 1 and len(images[0]) > CHUNK_ATOMS and gradients:
            n = len(images[0])
            parts = [
                self._compute(images, gradients, strain, np.arange(lo, min(n, lo + CHUNK_ATOMS)))
                for lo in range(0, n, CHUNK_ATOMS)
            ]
            return _concatenate(parts)
        return self._compute(images, gradients, strain, None)

    def _compute(
        self, images: list[Atoms], gradients: bool, strain: bool, centres: np.ndarray | None
    ) -> dict[int, SpeciesBlock]:
        import metatensor

        wanted = (["positions"] if gradients else []) + (["strain"] if strain else [])
        selected = None
        if centres is not None:
            selected = metatensor.Labels(
                ["system", "atom"], np.stack([np.zeros_like(centres), centres], axis=1).astype(np.int32)
            )
        with warnings.catch_warnings():
            # open structures carry a cell ASE keeps for viewing; featomic says it ignores it
            warnings.filterwarnings("ignore", message="periodic boundary conditions are disabled")
            tensor = self.calculator.compute(images, gradients=wanted, selected_samples=selected)
        tensor = tensor.keys_to_properties(self._pairs)
        out: dict[int, SpeciesBlock] = {}
        for key, block in tensor.items():
            if len(block.samples) == 0:  # an element with no centre in this chunk
                continue
            z = int(key["center_type"])
            idx = int(np.flatnonzero(self.numbers == z)[0])
            samples = block.samples.values
            p = np.asarray(block.values, dtype=np.float64)
            norm = np.linalg.norm(p, axis=1)
            norm = np.where(norm > 0, norm, 1.0)  # an isolated atom has p = 0: keep it 0, its kernel is 0
            unit = p / norm[:, None]
            sb = SpeciesBlock(values=unit, system=samples[:, 0].astype(np.int64), atom=samples[:, 1].astype(np.int64))
            if gradients:
                g = block.gradient("positions")
                gs = g.samples.values
                sb.grad_sample = gs[:, 0].astype(np.int64)
                sb.grad_atom = gs[:, 2].astype(np.int64)
                sb.grad = _unit_gradient(np.asarray(g.values, dtype=np.float64), unit, norm, sb.grad_sample)
            if strain:
                g = block.gradient("strain")
                rows = g.samples.values[:, 0].astype(np.int64)
                d = np.zeros((len(p), 3, 3, p.shape[1]))
                d[rows] = np.asarray(g.values, dtype=np.float64)
                flat = _unit_gradient(d.reshape(len(p), 9, -1), unit, norm, np.arange(len(p)))
                sb.strain = flat.reshape(len(p), 3, 3, -1)
            out[idx] = sb
        return out


def _unit_gradient(dp: np.ndarray, unit: np.ndarray, norm: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """d(p/|p|) = (dp - p̂ (p̂·dp)) / |p| for gradient entries (g, k, D) belonging to samples ``rows``."""
    u = unit[rows]  # (g, D)
    along = np.einsum("gkd,gd->gk", dp, u)
    return (dp - along[:, :, None] * u[:, None, :]) / norm[rows][:, None, None]


def _concatenate(parts: list[dict[int, SpeciesBlock]]) -> dict[int, SpeciesBlock]:
    """Chunks of centres of one structure → one block per element (gradient rows re-indexed)."""
    out: dict[int, SpeciesBlock] = {}
    for idx in sorted({k for part in parts for k in part}):
        blocks = [part[idx] for part in parts if idx in part]
        offsets = np.cumsum([0] + [len(b.values) for b in blocks[:-1]])
        has_grad = blocks[0].grad is not None
        has_strain = blocks[0].strain is not None
        out[idx] = SpeciesBlock(
            values=np.concatenate([b.values for b in blocks]),
            system=np.concatenate([b.system for b in blocks]),
            atom=np.concatenate([b.atom for b in blocks]),
            grad_sample=np.concatenate([b.grad_sample + o for b, o in zip(blocks, offsets, strict=True)])
            if has_grad
            else None,
            grad_atom=np.concatenate([b.grad_atom for b in blocks]) if has_grad else None,
            grad=np.concatenate([b.grad for b in blocks]) if has_grad else None,
            strain=np.concatenate([b.strain for b in blocks]) if has_strain else None,
        )
    return out
