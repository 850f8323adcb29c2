"""Neighbour lists from vesin, for open and periodic cells, and a Verlet list with a skin for MD.

A neighbour list here is the triple ``(i, j, shifts)``: pair ``p`` connects atom ``i[p]`` to atom ``j[p]``,
whose image lies at ``positions[j] + shifts @ cell`` (``shifts`` integer, (P, 3)). Lists are *half* by default
(each pair once, half the distance work); descriptors add every pair to both of its atoms. ``full=True`` gives
both ``i→j`` and ``j→i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError


@dataclass
class NeighborList:
    """Pairs within a cutoff: atoms ``i`` (P,), ``j`` (P,), integer cell ``shifts`` (P, 3); ``half``: each pair once."""

    i: np.ndarray
    j: np.ndarray
    shifts: np.ndarray
    half: bool = True

    def __len__(self) -> int:
        return len(self.i)


def neighbor_list(atoms: Atoms, cutoff: float, full: bool = False) -> NeighborList:
    """Neighbour list of ``atoms`` within ``cutoff`` Å (vesin; any mix of periodic directions).

    Periodic directions need a cell that is not degenerate; open directions ignore the cell.
    """
    pos = np.asarray(atoms.positions, dtype=np.float64)
    return _compute(pos, np.asarray(atoms.cell[:]), atoms.pbc, cutoff, full)


def _compute(
    positions: np.ndarray,
    cell: np.ndarray,
    pbc,
    cutoff: float,
    full: bool = False,
    threads: int = 0,
    by_centre: bool = False,
) -> NeighborList:
    """vesin's list; ``threads`` > 0: on that many threads (vesin's own pthreads: safe in forked children),
    0: vesin's default (``OMP_NUM_THREADS``, else all cores); ``by_centre``: pairs grouped by ``i`` ascending."""
    from vesin import NeighborList as _VesinNL

    pbc = np.asarray(pbc, dtype=bool)
    if pbc.any():
        if abs(np.linalg.det(cell)) < 1e-9:
            raise InputError("a periodic structure needs a cell with non-zero volume")
        box = cell
    else:
        box = np.zeros((3, 3))
    if len(positions) < 2:
        empty = np.zeros(0, dtype=np.int64)
        if not pbc.any():
            return NeighborList(empty, empty, np.zeros((0, 3), dtype=np.int64), not full)
    nl = _VesinNL(cutoff=float(cutoff), full_list=full, n_threads=int(threads), sorted=by_centre)
    i, j, shifts = nl.compute(points=positions, box=box, periodic=pbc.tolist(), quantities="ijS")
    return NeighborList(i.astype(np.int64), j.astype(np.int64), shifts.astype(np.int64), not full)


class VerletList:
    """A neighbour list with a skin, rebuilt only when needed (for MD, where atoms move little per step).

    The list holds every pair within ``cutoff + skin``; it stays valid (contains every pair within
    ``cutoff``) until some atom has moved more than ``skin / 2`` since the last build, or the cell,
    periodicity or atoms change. Pairs between ``cutoff`` and ``cutoff + skin`` are harmless to a
    descriptor whose cutoff function vanishes beyond ``cutoff``.

    Call :meth:`get` every step; ``n_builds`` counts rebuilds. With ``relabel`` (a function of positions, cell
    and pbc returning a permutation, e.g. :func:`spatial_order`), each rebuild relabels the atoms first: the list
    is in the new labels (atom ``a`` of the list is atom ``order[a]`` of the structure), grouped by ``i``
    ascending, and :attr:`order` holds the permutation (no sorting of the pairs afterwards).
    """

    def __init__(self, cutoff: float, skin: float = 0.5, full: bool = False, relabel=None):
        if skin < 0:
            raise InputError(f"skin must be >= 0, got {skin}")
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.full = full
        self.relabel = relabel
        self.order: np.ndarray | None = None
        self.n_builds = 0
        self._key: tuple | None = None
        self._positions: np.ndarray | None = None
        self._list: NeighborList | None = None

    def get(self, atoms: Atoms, threads: int = 0) -> NeighborList:
        """The list for ``atoms`` as they are now (rebuilt if an atom moved more than skin/2; on ``threads``
        threads, 0: vesin's default)."""
        positions = np.asarray(atoms.positions, dtype=np.float64)
        cell = np.asarray(atoms.cell[:], dtype=np.float64)
        # bytes, not a tuple of ints: this runs every MD step (a 50k-atom tuple costs milliseconds)
        key = (np.asarray(atoms.numbers).tobytes(), tuple(bool(p) for p in atoms.pbc), cell.tobytes())
        if self._list is not None and key == self._key and self._positions is not None:
            moved = np.einsum("ij,ij->i", positions - self._positions, positions - self._positions)
            if moved.size == 0 or float(moved.max()) <= (0.5 * self.skin) ** 2:
                return self._list
        if self.relabel is None:
            self._list = _compute(positions, cell, atoms.pbc, self.cutoff + self.skin, self.full, threads)
        else:
            self.order = np.asarray(self.relabel(positions, cell, atoms.pbc))
            cutoff = self.cutoff + self.skin
            self._list = _compute(positions[self.order], cell, atoms.pbc, cutoff, self.full, threads, by_centre=True)
        self._positions = positions.copy()
        self._key = key
        self.n_builds += 1
        return self._list


def spatial_order(positions: np.ndarray, cell: np.ndarray, pbc, bin_size: float = 3.0) -> np.ndarray:
    """A permutation of the atoms along a Morton (Z-order) curve over bins of at most ``bin_size`` Å.

    Atoms close in space end up close in memory, so a pass over pairs touches a small, cache-sized set of
    per-atom rows (LAMMPS sorts atoms for the same reason). ``order[k]`` is the original index of the k-th atom.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if len(positions) == 0:
        return np.zeros(0, dtype=np.int64)
    pbc = np.asarray(pbc, dtype=bool)
    if pbc.all() and abs(np.linalg.det(cell)) > 1e-9:
        frac = np.linalg.solve(np.asarray(cell, dtype=np.float64).T, positions.T).T % 1.0
        lengths = np.linalg.norm(cell, axis=1)
    else:  # open (or partly open) cells: bin the bounding box
        lo = positions.min(axis=0)
        lengths = np.maximum(positions.max(axis=0) - lo, 1e-9)
        frac = (positions - lo) / lengths
    # a power of two of bins per axis (each bin_size/2 to bin_size wide): the curve then splits space in halves,
    # quarters, ... so equal contiguous ranges of atoms are compact blocks in space (threaded kernels: few pairs
    # cross between blocks)
    wanted = np.maximum(lengths / bin_size, 1.0)
    n_bins = np.clip(2 ** np.ceil(np.log2(wanted)).astype(np.int64), 1, 1024)
    idx = np.minimum((frac * n_bins).astype(np.int64), n_bins - 1)
    code = _spread_bits(idx[:, 0]) | (_spread_bits(idx[:, 1]) << 1) | (_spread_bits(idx[:, 2]) << 2)
    return np.argsort(code, kind="stable").astype(np.int64)


def _spread_bits(x: np.ndarray) -> np.ndarray:
    """Insert two zero bits between the (10) low bits of ``x``: the per-axis part of a 3-D Morton code."""
    x = x.astype(np.int64) & 0x3FF
    x = (x | (x << 16)) & 0x030000FF
    x = (x | (x << 8)) & 0x0300F00F
    x = (x | (x << 4)) & 0x030C30C3
    x = (x | (x << 2)) & 0x09249249
    return x
