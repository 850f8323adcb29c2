"""Batches of configurations as one graph of pairs, the input of pair-based descriptors.

Configurations are concatenated: atom ``a`` of the batch belongs to configuration ``image[a]``; pair ``p``
joins atom ``centers[p]`` to ``neighbors[p]`` with vector ``vectors[p]`` (Å, second atom's image minus first
atom). Lists are half lists (each pair once) unless built otherwise.
Positions are fixed once a batch is built, so the pair vectors are the leaves that autograd differentiates:
forces and virial follow exactly from dE/d(vectors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from mlpkit.descriptors.kernels import pair_vectors
from mlpkit.descriptors.neighbors import NeighborList, neighbor_list
from mlpkit.errors import UnsupportedSpeciesError


@dataclass
class PendingVectors:
    """Pair vectors not computed yet: ``out[p] = positions[j[p]] - positions[i[p]] + shifts[p] @ cell`` (Å), left
    to the first consumer, so that the threaded kernels can compute them in the launch that uses them (one
    launch less per MD step). :meth:`fill` computes them (once)."""

    positions: np.ndarray  # (n, 3) Å
    i: np.ndarray  # (P,)
    j: np.ndarray  # (P,)
    shifts: np.ndarray  # (P, 3) integer
    cell: np.ndarray  # (3, 3) Å
    out: np.ndarray  # (P, 3): the graph's ``vectors``
    done: bool = False

    def fill(self) -> None:
        """Compute the vectors into ``out`` (on the kernels' threads), unless done already."""
        if not self.done:
            from mlpkit.descriptors.kernel_threads import pair_vectors as threaded_pair_vectors

            threaded_pair_vectors(self.positions, self.i, self.j, self.shifts, self.cell, out=self.out)
            self.done = True


@dataclass
class GraphArrays:
    """One configuration in numpy: species index (n,), pair centres/neighbours (P,), vectors (P, 3) Å."""

    species: np.ndarray
    centers: np.ndarray
    neighbors: np.ndarray
    vectors: np.ndarray
    volume: float  # Å³, 0 for cells not periodic in all three directions
    half: bool = True
    #: atoms relabelled (e.g. sorted in space): atom ``a`` here is atom ``order[a]`` of the structure; None: same
    order: np.ndarray | None = None
    #: ``vectors`` not filled yet (see :class:`PendingVectors`; :func:`concatenate` hands it on, :func:`collate`
    #: fills it); None: ``vectors`` are ready
    pending: PendingVectors | None = None

    def ready(self) -> GraphArrays:
        """This graph with its ``vectors`` computed."""
        if self.pending is not None:
            self.pending.fill()
        return self


def species_index(atoms: Atoms, species: Sequence[str]) -> np.ndarray:
    """Species index (n,) of each atom; :class:`UnsupportedSpeciesError` for an element not in ``species``."""
    lut = np.full(119, -1, dtype=np.int64)
    lut[[atomic_numbers[s] for s in species]] = np.arange(len(species))
    idx = lut[np.asarray(atoms.numbers)]
    if (idx < 0).any():
        missing = sorted({chemical_symbols[z] for z in np.asarray(atoms.numbers)[idx < 0]})
        raise UnsupportedSpeciesError(
            f"structure contains {', '.join(missing)}, but the model was trained for {', '.join(species)} only"
        )
    return idx


def graph_arrays(atoms: Atoms, species: Sequence[str], cutoff: float, nlist: NeighborList | None = None) -> GraphArrays:
    """Pairs of ``atoms`` within ``cutoff`` (or from a given, possibly larger, list ``nlist``)."""
    idx = species_index(atoms, species)
    nl = nlist if nlist is not None else neighbor_list(atoms, cutoff)
    pos = np.ascontiguousarray(atoms.positions, dtype=np.float64)
    cell = np.ascontiguousarray(atoms.cell[:], dtype=np.float64)
    vec = pair_vectors(pos, nl.i, nl.j, np.ascontiguousarray(nl.shifts, dtype=np.int64), cell)
    volume = float(abs(atoms.cell.volume)) if atoms.pbc.all() else 0.0
    return GraphArrays(idx, nl.i, nl.j, vec, volume, nl.half)


@dataclass
class GraphBatch:
    """Several configurations as one graph, as torch tensors (see module docstring)."""

    species: torch.Tensor  # (N,) long
    image: torch.Tensor  # (N,) long, configuration of each atom
    centers: torch.Tensor  # (P,) long
    neighbors: torch.Tensor  # (P,) long
    vectors: torch.Tensor  # (P, 3)
    n_images: int
    n_atoms: torch.Tensor  # (n_images,) atoms per configuration
    volume: torch.Tensor  # (n_images,) Å³ (0 where not fully periodic)
    half: bool = True


@dataclass
class GraphConcat:
    """Several configurations concatenated in numpy (the input of the compiled kernels and of :func:`collate`)."""

    species: np.ndarray  # (N,) int64
    image: np.ndarray  # (N,) int64, configuration of each atom
    centers: np.ndarray  # (P,) int64 (or int32)
    neighbors: np.ndarray  # (P,) int64 (or int32)
    vectors: np.ndarray  # (P, 3) float64, Å
    n_atoms: np.ndarray  # (n_images,) atoms per configuration
    volume: np.ndarray  # (n_images,) Å³ (0 where not fully periodic)
    half: bool = True
    #: ``vectors`` not filled yet (one configuration whose graph deferred them): see :class:`PendingVectors`
    pending: PendingVectors | None = None

    @property
    def n_images(self) -> int:
        return len(self.n_atoms)


def concatenate(parts: Sequence[GraphArrays]) -> GraphConcat:
    """Concatenate configurations (atom indices offset per configuration), contiguous int64/float64 arrays."""
    if len({p.half for p in parts}) > 1:
        raise ValueError("cannot mix half and full neighbour lists in one batch")
    n = np.array([len(p.species) for p in parts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n)[:-1]])
    pending = None
    if len(parts) == 1:
        p = parts[0]
        species, centers, neighbors, vectors = p.species, p.centers, p.neighbors, p.vectors
        if p.pending is not None and not p.pending.done:  # filled later, in place (``vectors`` is not copied)
            pending = p.pending
            assert vectors.dtype == np.float64 and vectors.flags.c_contiguous
        # one configuration keeps its index dtype (the MD path uses int32: less memory traffic per pass)
        index_dtype = centers.dtype if centers.dtype in (np.int32, np.int64) else np.int64
    else:
        parts = [p.ready() for p in parts]
        species = np.concatenate([p.species for p in parts])
        centers = np.concatenate([p.centers + o for p, o in zip(parts, offsets, strict=True)])
        neighbors = np.concatenate([p.neighbors + o for p, o in zip(parts, offsets, strict=True)])
        vectors = np.concatenate([p.vectors for p in parts])
        index_dtype = np.int64
    return GraphConcat(
        species=np.ascontiguousarray(species, dtype=np.int64),
        image=np.repeat(np.arange(len(parts), dtype=np.int64), n),
        centers=np.ascontiguousarray(centers, dtype=index_dtype),
        neighbors=np.ascontiguousarray(neighbors, dtype=index_dtype),
        vectors=np.ascontiguousarray(vectors, dtype=np.float64).reshape(-1, 3),
        n_atoms=n,
        volume=np.array([p.volume for p in parts], dtype=np.float64),
        half=parts[0].half,
        pending=pending,
    )


def collate(parts: Sequence[GraphArrays], dtype: torch.dtype, device: torch.device | str = "cpu") -> GraphBatch:
    """Concatenate configurations into one :class:`GraphBatch`."""
    c = concatenate(parts)
    if c.pending is not None:
        c.pending.fill()
    return GraphBatch(
        species=torch.as_tensor(c.species, device=device),
        image=torch.as_tensor(c.image, device=device),
        centers=torch.as_tensor(c.centers, dtype=torch.long, device=device),
        neighbors=torch.as_tensor(c.neighbors, dtype=torch.long, device=device),
        vectors=torch.as_tensor(c.vectors, dtype=dtype, device=device),
        n_images=c.n_images,
        n_atoms=torch.as_tensor(c.n_atoms, device=device),
        volume=torch.as_tensor(c.volume, dtype=torch.float64, device=device),
        half=c.half,
    )
