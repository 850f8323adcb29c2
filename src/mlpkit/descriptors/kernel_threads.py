"""The symmetry-function kernels on several threads: the block kernels of :mod:`mlpkit.descriptors.atom_kernels`,
one block of atoms per thread, launched by numba ``prange``.

**How many threads.** As many as torch uses (``torch.get_num_threads()``), so one setting governs the whole MD
step (descriptor, networks, forces): ``torch.set_num_threads``, ``OMP_NUM_THREADS`` or ``MLPKIT_THREADS`` through
:func:`mlpkit.threads.configure_threads` (which sets torch and numba alike); ``threads=`` overrides it per call.
Blocks hold at least :data:`MIN_ATOMS_PER_BLOCK` atoms (fewer threads for small systems: launching costs ~20 µs).
One thread runs the block kernels directly, without any thread pool.

**Which threading layer, and why: numba's ``workqueue``.** numba offers three (numba docs, "The Threading
Layers"): ``tbb`` (fork- and thread-safe, but needs the TBB library, which is not installed here), ``omp``
(GNU OpenMP is *not* fork-safe once a parallel region has run: a forked child — a Dask process worker, a
``multiprocessing`` fork — can hang in its first parallel region) and ``workqueue`` (numba's own pthread pool:
fork-safe, idle workers sleep on a condition instead of spinning, which matters on a shared machine; but *not*
thread-safe: two Python threads launching parallel kernels at once abort the process). So the layer is set to
``workqueue`` before the first parallel launch, unless the user chose one with ``NUMBA_THREADING_LAYER`` (e.g.
``tbb`` where it is installed), and every launch from this module holds :data:`_LAUNCH` (a lock re-created in a
forked child), which makes concurrent callers (threaded Dask workers, a committee evaluated from threads) wait
for each other instead of aborting. torch's own thread pool (the networks) is GNU OpenMP and hangs in a forked
child: a child forked from a multi-threaded parent runs torch on one thread and the kernels on the parent's
thread count. ``tests/test_kernel_threads.py`` predicts in a parent, then in a forked child, and checks the
answers agree without hanging.

**Deterministic.** Blocks are fixed by the atom count and the thread count; per-atom features are the same to
the bit at any thread count (i-centred); forces are sums of per-block private arrays in block order, so they
differ between thread counts only by the order of a few additions (~1e-16 relative).
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from mlpkit.descriptors import atom_kernels as ak
from mlpkit.descriptors import kernel_cache

kernel_cache.install()  # before any cache=True kernel: one cache stamp over all kernel sources

#: numba's threading layer for the parallel kernels (module docstring: fork-safe, sleeping idle workers)
THREADING_LAYER = "workqueue"
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = THREADING_LAYER

#: the fewest atoms worth a thread of their own
MIN_ATOMS_PER_BLOCK = 256

_LAUNCH = threading.Lock()
#: in a forked child: the parent's thread count (torch itself is set to one thread there, see _after_fork)
_FORKED_THREADS: int | None = None
_parent_threads: int | None = None


def _before_fork() -> None:
    global _parent_threads
    torch = sys.modules.get("torch")
    _parent_threads = torch.get_num_threads() if torch is not None else None


def _after_fork_in_child() -> None:
    """A forked child gets a fresh launch lock (the parent's may have been held by another thread at the fork).
    torch's GNU OpenMP pool is not fork-safe: once the parent ran a parallel region, the child's first
    multi-threaded torch op hangs (measured: a 2-thread matmul in a forked child never returns). So torch goes
    to one thread in the child, and the kernels (numba workqueue: fork-safe) keep the parent's count."""
    global _LAUNCH, _FORKED_THREADS
    _LAUNCH = threading.Lock()
    if _parent_threads is not None and _parent_threads > 1:
        sys.modules["torch"].set_num_threads(1)
        _FORKED_THREADS = _parent_threads


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def kernel_threads(threads: int | None = None) -> int:
    """Threads for the kernels: ``threads`` if given, else torch's intra-op thread count (module docstring; in a
    forked child, the parent's)."""
    if threads is not None:
        return max(1, int(threads))
    if _FORKED_THREADS is not None:
        return _FORKED_THREADS
    import torch

    return max(1, torch.get_num_threads())


def _blocks(n_atoms: int, threads: int) -> int:
    """One block per thread, each of at least :data:`MIN_ATOMS_PER_BLOCK` atoms."""
    return max(1, min(threads, n_atoms // MIN_ATOMS_PER_BLOCK))


@dataclass
class BlockLayout:
    """Atoms split into blocks (``bounds`` (n_blocks + 1,)) and the cross pairs of each block (neighbour in
    the block, centre elsewhere): ``cross[cross_start[b]:cross_start[b+1]]`` (see :func:`ak.block_pairs`)."""

    bounds: np.ndarray
    cross_start: np.ndarray
    cross: np.ndarray

    @property
    def n_blocks(self) -> int:
        return self.bounds.shape[0] - 1


class PairTopology:
    """Pairs of each atom as centre, CSR (``own_start`` (n_atoms + 1,), ``own`` (P,)), and the block layouts
    built on it (one per block count, kept while the neighbour list lasts)."""

    def __init__(self, centers: np.ndarray, neighbors: np.ndarray, n_atoms: int):
        index = np.int32 if centers.shape[0] < 2**31 else np.int64
        self.centers, self.neighbors = centers, neighbors
        self.own_start = np.empty(n_atoms + 1, dtype=np.int64)
        self.own = np.empty(centers.shape[0], dtype=index)
        ak.pair_topology(centers, self.own_start, self.own)
        #: pairs already grouped by centre in order (the MD graph): ``own`` is the identity, skip it
        self.direct = bool(np.array_equal(self.own, np.arange(self.own.shape[0])))
        self._layouts: dict[int, BlockLayout] = {}

    @property
    def n_atoms(self) -> int:
        return self.own_start.shape[0] - 1

    def layout(self, n_blocks: int, with_cross: bool = False) -> BlockLayout:
        """Contiguous blocks (Morton-sorted atoms: compact in space, so few pairs cross) and their cross pairs.

        Balanced by own pairs (the work of the forces pass), or with ``with_cross`` by own + cross pairs (the
        forward pass, where a block also looks up the pairs that cross into it: with half lists those all land
        in the later block, 11 % more work for the second of two blocks at 10k atoms if not balanced).
        """
        key = (n_blocks, with_cross)
        if key not in self._layouts:
            weight = self.own_start.astype(np.float64)  # cumulative work up to each atom
            lay = self._split(n_blocks, weight)
            for _ in range(2 if with_cross else 0):  # re-balance on the pairs crossing into each atom
                incoming = np.bincount(self.neighbors[lay.cross], minlength=self.n_atoms)
                lay = self._split(n_blocks, weight + np.concatenate([[0], np.cumsum(incoming)]))
            self._layouts[key] = lay
        return self._layouts[key]

    def _split(self, n_blocks: int, cumulative: np.ndarray) -> BlockLayout:
        targets = np.arange(1, n_blocks) * (cumulative[-1] / n_blocks)
        inner = np.searchsorted(cumulative, targets)
        bounds = np.concatenate([[0], inner, [self.n_atoms]]).astype(np.int64)
        block = np.empty(self.n_atoms, dtype=np.int32)
        cross_start = np.empty(n_blocks + 1, dtype=np.int64)
        cross = np.empty(self.own.shape[0], dtype=self.own.dtype)
        ak.block_pairs(bounds, self.centers, self.neighbors, self.own_start, self.own, block, cross_start, cross)
        return BlockLayout(bounds, cross_start, cross[: cross_start[-1]].copy())


def pair_topology(centers: np.ndarray, neighbors: np.ndarray, n_atoms: int) -> PairTopology:
    """The CSR pair index of a neighbour list (O(P): callers keep it while the list lasts)."""
    return PairTopology(centers, neighbors, n_atoms)


# -- parallel launchers: one prange iteration per block ----------------------------------------------------


@njit(cache=True, parallel=True)
def _features_parallel(bounds, vectors, centers, neighbors, species, half, own_start, own, direct, cross_start, cross,
                       G, M, floats, ints, parent, direction, degree, weight, parity, pair_a, pair_b, dindex, dcoef,
                       table_radial, table_angular):  # fmt: skip
    for b in prange(bounds.shape[0] - 1):
        ak.features_block(bounds[b], bounds[b + 1], vectors, centers, neighbors, species, half, own_start, own,
                          direct, cross_start[b : b + 2], cross, G, M, floats, ints, parent, direction, degree, weight,
                          parity, pair_a, pair_b, dindex, dcoef, table_radial, table_angular)  # fmt: skip


@njit(cache=True, parallel=True)
def _moment_grads_parallel(bounds, grad_features, M, ints, degree, weight, pair_a, pair_b):
    for b in prange(bounds.shape[0] - 1):
        ak.moment_grads_block(bounds[b], bounds[b + 1], grad_features, M, ints, degree, weight, pair_a, pair_b)


@njit(cache=True, parallel=True)
def _forces_parallel(bounds, vectors, neighbors, species, image, half, own_start, own, grad_features, gm, forces,
                     cross_grad, virials, floats, ints, parent, direction, degree, weight, parity, pair_a, pair_b,
                     dindex, dcoef, table_radial, table_angular):  # fmt: skip
    for b in prange(bounds.shape[0] - 1):
        ak.forces_block(bounds[b], bounds[b + 1], vectors, neighbors, species, image, half, own_start, own,
                        grad_features, gm, forces, cross_grad, virials[b], floats, ints, parent, direction, degree,
                        weight, parity, pair_a, pair_b, dindex, dcoef, table_radial, table_angular)  # fmt: skip


@njit(cache=True, parallel=True)
def _cross_forces_parallel(cross_start, cross, neighbors, cross_grad, forces):
    for b in prange(cross_start.shape[0] - 1):
        ak.cross_forces_block(cross_start[b], cross_start[b + 1], cross, neighbors, cross_grad, forces)


@njit(cache=True, parallel=True)
def _pair_vectors_parallel(bounds, positions, i, j, shifts, cell, out):
    for b in prange(bounds.shape[0] - 1):
        ak.pair_vectors_block(bounds[b], bounds[b + 1], positions, i, j, shifts, cell, out)


def block_bounds(topology: PairTopology, threads: int | None = None) -> np.ndarray:
    """The atom blocks (n_blocks + 1,) of the forces pass for this topology and thread count (balanced by the
    pairs each block owns)."""
    blocks = _blocks(topology.n_atoms, kernel_threads(threads))
    if blocks == 1:
        return np.array([0, topology.n_atoms], dtype=np.int64)
    return topology.layout(blocks).bounds


def atom_bounds(n_atoms: int, threads: int | None = None) -> np.ndarray:
    """Blocks (n_blocks + 1,) of equal atom counts, as many as the pair kernels use: for per-atom kernels (the
    networks, dE/dM), whose cost is per atom, not per pair (on the pair-balanced blocks the networks' blocks
    differed by 29 % at 10k water atoms: the centres of crossing pairs own more pairs)."""
    return _even_bounds(n_atoms, _blocks(n_atoms, kernel_threads(threads)))


def _even_bounds(n: int, blocks: int) -> np.ndarray:
    return (np.arange(blocks + 1, dtype=np.int64) * n) // blocks


def _launch(kernel, n_blocks: int, *args) -> None:
    """Run a prange launcher over ``n_blocks`` blocks on as many numba threads (at most numba's pool size: more
    blocks than threads still give the same answer, the blocks then share the threads)."""
    with _LAUNCH:
        numba.set_num_threads(min(n_blocks, numba.config.NUMBA_NUM_THREADS))
        kernel(*args)


_NO_CROSS = (np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.int32))

# -- the calls the potentials make -------------------------------------------------------------------------


def symmetry_features(vectors, centers, neighbors, species, half, G, M, *params, threads: int | None = None,
                      topology: PairTopology | None = None) -> PairTopology:  # fmt: skip
    """Fill features ``G`` (n_atoms, F) and moments ``M`` (n_atoms, S, K, C) from pair ``vectors`` (P, 3) Å
    (``params``: :meth:`KernelParameters.args`); float64, or float32 arrays for float32 models. Returns the
    pair topology (pass it back to :func:`symmetry_forces`)."""
    n = G.shape[0]
    t = topology if topology is not None else pair_topology(centers, neighbors, n)
    blocks = _blocks(n, kernel_threads(threads))
    if blocks == 1:
        cross_start, cross = _NO_CROSS
        ak.features_block(0, n, vectors, centers, neighbors, species, half, t.own_start, t.own, t.direct,
                          cross_start, cross.astype(t.own.dtype), G, M, *params)  # fmt: skip
    else:
        lay = t.layout(blocks, with_cross=half)
        _launch(_features_parallel, blocks, lay.bounds, vectors, centers, neighbors, species, half, t.own_start,
                t.own, t.direct, lay.cross_start, lay.cross, G, M, *params)  # fmt: skip
    return t


def symmetry_forces(vectors, centers, neighbors, species, image, half, grad_features, M, forces, virial, *params,
                    threads: int | None = None, topology: PairTopology | None = None,
                    cross_grad: np.ndarray | None = None, moment_grads: bool = True) -> None:  # fmt: skip
    """Fill forces (n_atoms, 3) = -dE/dx (eV/Å) and virial (n_images, 3, 3) = Σ_p v_p ⊗ dE/dv_p (eV) from dE/dG
    ``grad_features`` (n_atoms, F). ``M`` from :func:`symmetry_features` on the same pairs is **overwritten**
    with dE/dM (``moment_grads=False``: ``M`` already holds dE/dM, e.g. from the compiled networks' launch).
    ``cross_grad`` (P, 3) float64: reusable scratch for dE/dv of pairs that cross blocks."""
    n = species.shape[0]
    t = topology if topology is not None else pair_topology(centers, neighbors, n)
    blocks = _blocks(n, kernel_threads(threads))
    ints, degree, weight = params[1], params[4], params[5]
    pair_a, pair_b = params[7], params[8]
    if cross_grad is None or cross_grad.shape != (vectors.shape[0], 3):
        cross_grad = np.empty((vectors.shape[0] if blocks > 1 else 0, 3))
    if blocks == 1:
        if moment_grads:
            ak.moment_grads_block(0, n, grad_features, M, ints, degree, weight, pair_a, pair_b)
        ak.forces_block(0, n, vectors, neighbors, species, image, half, t.own_start, t.own, grad_features, M, forces,
                        cross_grad, virial, *params)  # fmt: skip
        return
    lay = t.layout(blocks)
    if moment_grads:
        _launch(_moment_grads_parallel, blocks, lay.bounds, grad_features, M, ints, degree, weight, pair_a, pair_b)
    # one spare image per block: a block adds to its virial once per atom, and blocks that shared a cache line
    # would bounce it between cores
    virials = np.empty((blocks, virial.shape[0] + 1, 3, 3))
    _launch(_forces_parallel, blocks, lay.bounds, vectors, neighbors, species, image, half, t.own_start, t.own,
            grad_features, M, forces, cross_grad, virials, *params)  # fmt: skip
    receiving = np.flatnonzero(np.diff(lay.cross_start))
    if receiving.shape[0] == 1:  # one block receives all crossing pairs (2 blocks, half list): no launch for it
        b = receiving[0]
        ak.cross_forces_block(lay.cross_start[b], lay.cross_start[b + 1], lay.cross, neighbors, cross_grad, forces)
    elif receiving.shape[0] > 1:
        _launch(_cross_forces_parallel, blocks, lay.cross_start, lay.cross, neighbors, cross_grad, forces)
    virial[:] = virials[:, : virial.shape[0]].sum(axis=0)


def pair_vectors(
    positions, i, j, shifts, cell, threads: int | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """Pair vectors (P, 3) Å: ``positions[j] - positions[i] + shifts @ cell`` (shifts integer (P, 3)), into
    ``out`` if given."""
    out = np.empty((i.shape[0], 3)) if out is None else out
    blocks = _blocks(positions.shape[0], kernel_threads(threads))
    if blocks == 1:
        ak.pair_vectors_block(0, i.shape[0], positions, i, j, shifts, cell, out)
    else:
        _launch(_pair_vectors_parallel, blocks, _even_bounds(i.shape[0], blocks), positions, i, j, shifts, cell, out)
    return out
