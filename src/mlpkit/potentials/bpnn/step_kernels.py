"""A whole BPNN energy + forces evaluation on several threads in **one** parallel launch: pair vectors (when the
MD graph left them), features, networks with dE/dM, forces and the crossing pairs' hand-over, separated by spin
barriers
(:mod:`mlpkit.descriptors.spin_barrier`) instead of five launches.

Each stage keeps its own block layout (features: balanced on own + crossing pairs; networks and dE/dM: equal atom
counts; forces: balanced on own pairs): block b of every stage runs on the same thread, and a barrier separates
stages whose blocks read other blocks' rows (forces read dE/dG and dE/dM of neighbour atoms; the hand-over adds
the crossing pairs' dE/dv to the neighbour atoms). Same arithmetic, in the same order, as the separate launches
of :mod:`mlpkit.descriptors.kernel_threads` and :mod:`.network_kernels`: the results equal theirs to rounding (the
block kernels use fast-math contraction/reassociation, so LLVM may round a kernel inlined here differently from the
same kernel in its own launcher: 1 ulp of the energy seen once) and are the same bits from call to call.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from mlpkit.descriptors import atom_kernels as ak
from mlpkit.descriptors import kernel_cache
from mlpkit.descriptors import kernel_threads as kt
from mlpkit.descriptors.graph import PendingVectors
from mlpkit.descriptors.spin_barrier import STRIDE, barrier, concurrent_blocks, now_ns, stamp
from mlpkit.potentials.bpnn.network_kernels import _PAD, CompiledNetworks, networks_block

kernel_cache.install()  # before any cache=True kernel: one cache stamp over all kernel sources

#: stages of the launch; per block the timeline holds the start of each stage and the end of its barrier
STAGES = ("pair vectors", "features", "networks + dE/dM", "forces", "crossing hand-over")
#: a list to record timelines in (``bench/md_step_timeline.py``): (ns at the call, (blocks, 20) int64 stamps: start,
#: then for each stage the end of its work and the end of the barrier after it (wall; then the same as thread CPU
#: time), ns at the return); None: off
TIMELINE: list | None = None


@njit(cache=True, parallel=True)
def _step_parallel(flags, timeline, pair_bounds, positions, pair_i, pair_j, shifts, cell, fwd_bounds, fwd_cross_start,
                   fwd_cross, atom_bounds, bwd_bounds, bwd_cross_start, bwd_cross,
                   vectors, centers, neighbors, species, image, half, own_start, own, direct, G, M, weights, layout,
                   code, scale, energy, grad, image_energies, forces, cross_grad, virials, floats, ints, parent,
                   direction, degree, weight, parity, pair_a, pair_b, dindex, dcoef, table_radial,
                   table_angular):  # fmt: skip
    for b in prange(fwd_bounds.shape[0] - 1):
        stamp(timeline, b, 0)
        ak.pair_vectors_block(pair_bounds[b], pair_bounds[b + 1], positions, pair_i, pair_j, shifts, cell, vectors)
        stamp(timeline, b, 1)
        barrier(flags, b, 1)  # every pair vector (a block's crossing pairs are other blocks' pairs)
        stamp(timeline, b, 2)
        ak.features_block(fwd_bounds[b], fwd_bounds[b + 1], vectors, centers, neighbors, species, half, own_start,
                          own, direct, fwd_cross_start[b : b + 2], fwd_cross, G, M, floats, ints, parent, direction,
                          degree, weight, parity, pair_a, pair_b, dindex, dcoef, table_radial,
                          table_angular)  # fmt: skip
        stamp(timeline, b, 3)
        barrier(flags, b, 2)  # every atom's features and moments are complete
        stamp(timeline, b, 4)
        a0, a1 = atom_bounds[b], atom_bounds[b + 1]
        networks_block(a0, a1, G, species, image, weights, layout, code, scale, energy, grad, image_energies[b])
        ak.moment_grads_block(a0, a1, grad, M, ints, degree, weight, pair_a, pair_b)
        stamp(timeline, b, 5)
        barrier(flags, b, 3)  # dE/dG and dE/dM of every atom
        stamp(timeline, b, 6)
        ak.forces_block(bwd_bounds[b], bwd_bounds[b + 1], vectors, neighbors, species, image, half, own_start, own,
                        grad, M, forces, cross_grad, virials[b], floats, ints, parent, direction, degree, weight,
                        parity, pair_a, pair_b, dindex, dcoef, table_radial, table_angular)  # fmt: skip
        stamp(timeline, b, 7)
        barrier(flags, b, 4)  # every crossing pair's dE/dv is in cross_grad
        stamp(timeline, b, 8)
        ak.cross_forces_block(bwd_cross_start[b], bwd_cross_start[b + 1], bwd_cross, neighbors, cross_grad, forces)
        stamp(timeline, b, 9)


def fused_blocks(topology: kt.PairTopology, threads: int | None = None) -> int:
    """Blocks for :func:`step_energy_forces` on this topology (0: not possible, use the separate launches)."""
    blocks = kt._blocks(topology.n_atoms, kt.kernel_threads(threads))
    return blocks if blocks > 1 and concurrent_blocks(blocks) else 0


def step_energy_forces(topology: kt.PairTopology, blocks: int, vectors, centers, neighbors, species, image, half,
                       n_images: int, G, M, networks: CompiledNetworks, params: tuple, grad, cross_grad,
                       pending: PendingVectors | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Energies per configuration (n_images,) eV, forces (n_atoms, 3) eV/Å and virial (n_images, 3, 3) eV, on
    ``blocks`` threads in one launch (``blocks`` from :func:`fused_blocks`). Features ``G`` (n, F) and moments
    ``M`` are filled (M ends as dE/dM), ``grad`` (n, F) receives dE/dG; ``cross_grad`` (P, 3) is scratch.
    ``networks`` must be up to date (:meth:`CompiledNetworks.update`). With ``pending`` (the graph's vectors not
    computed yet, ``pending.out`` the memory of ``vectors``) the launch computes the pair vectors first."""
    n = G.shape[0]
    if pending is not None and not pending.done:
        assert pending.out.ctypes.data == vectors.ctypes.data  # the same memory (views of one array)
        pv = pending
        pair_bounds = kt._even_bounds(vectors.shape[0], blocks)
    else:
        pv = _NO_PAIRS
        pair_bounds = np.zeros(blocks + 1, dtype=np.int64)
    fwd = topology.layout(blocks, with_cross=half)
    bwd = topology.layout(blocks)
    flags = np.zeros(blocks * STRIDE, dtype=np.int64)
    energy = np.empty(n)
    image_energies = np.empty((blocks, n_images + _PAD))
    forces = np.empty((n, 3))
    virials = np.empty((blocks, n_images + 1, 3, 3))  # one spare image: blocks' rows a cache line apart
    timeline = np.zeros((blocks if TIMELINE is not None else 0, len(STAGES) * 4), dtype=np.int64)
    called = now_ns()
    kt._launch(_step_parallel, blocks, flags, timeline, pair_bounds, pv.positions, pv.i, pv.j, pv.shifts, pv.cell,
               fwd.bounds, fwd.cross_start, fwd.cross, kt._even_bounds(n, blocks),
               bwd.bounds, bwd.cross_start, bwd.cross, vectors, centers, neighbors, species, image, half,
               topology.own_start, topology.own, topology.direct, G, M, networks.weights, networks.layout,
               networks.code, networks.scale, energy, grad, image_energies, forces, cross_grad, virials,
               *params)  # fmt: skip
    if TIMELINE is not None:
        TIMELINE.append((called, timeline, now_ns()))
    if pv is pending:
        pending.done = True
    return image_energies[:, :n_images].sum(axis=0), forces, virials[:, :n_images].sum(axis=0)


#: no pair vectors to compute (the graph's are ready): empty arrays of the index types the MD graph uses
_NO_PAIRS = PendingVectors(np.zeros((0, 3)), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32),
                           np.zeros((0, 3), dtype=np.int64), np.zeros((3, 3)), np.zeros((0, 3)))  # fmt: skip
