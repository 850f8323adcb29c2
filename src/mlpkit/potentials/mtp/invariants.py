"""What a moment-tensor basis of one level contains (see :mod:`mlpkit.potentials.mtp.basis` for the definitions):
the monomials of each tensor rank, the rotation invariants (full contractions of one to three moments) whose levels
fit, and the basis functions (products of invariants with total level at most the basis level).

A moment of channel ``c = s * n_radial + k`` (element ``s``, radial function ``k``) and rank ``ν`` has level
``2 + 4k + ν``, as in MTP. Pure combinatorics: no tensors are evaluated here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


def monomials(max_rank: int) -> tuple[list[tuple[int, int, int]], list[np.ndarray], list[int]]:
    """Monomial exponents of ranks 0..max_rank, per rank the map from full Cartesian index to monomial index,
    and the offset of each rank's block."""
    monos: list[tuple[int, int, int]] = []
    expand: list[np.ndarray] = []
    offsets: list[int] = []
    for nu in range(max_rank + 1):
        offsets.append(len(monos))
        block = [(a, b, nu - a - b) for a in range(nu, -1, -1) for b in range(nu - a, -1, -1)]
        index = {m: offsets[-1] + n for n, m in enumerate(block)}
        monos.extend(block)
        full = []
        for cart in itertools.product(range(3), repeat=nu):
            full.append(index[(cart.count(0), cart.count(1), cart.count(2))])
        expand.append(np.array(full, dtype=np.int64))
    return monos, expand, offsets


@dataclass(frozen=True)
class Invariant:
    """A full contraction of 1-3 moments; each moment is (channel = s * n_radial + k, rank ν)."""

    moments: tuple[tuple[int, int], ...]
    level: int


def moment_level(channel: int, nu: int, n_radial: int) -> int:
    """Level ``2 + 4k + ν`` of the moment of ``channel`` (radial function ``k = channel % n_radial``) and rank ν."""
    return 2 + 4 * (channel % n_radial) + nu


def enumerate_invariants(n_channels: int, n_radial: int, level: int, max_rank: int) -> list[Invariant]:
    """Invariants of level <= ``level`` over ``n_channels`` moment channels and ranks up to ``max_rank``: scalars
    (ν = 0), pair contractions of equal ranks, and triple contractions (ν1 + ν2 + ν3 even, triangle rule)."""
    L, C = level, n_channels

    def lev(channel: int, nu: int) -> int:
        return moment_level(channel, nu, n_radial)

    out = [Invariant(((c, 0),), lev(c, 0)) for c in range(C) if lev(c, 0) <= L]
    for nu in range(1, max_rank + 1):
        for a, b in itertools.combinations_with_replacement(range(C), 2):
            level = lev(a, nu) + lev(b, nu)
            if level <= L:
                out.append(Invariant(((a, nu), (b, nu)), level))
    for n1, n2, n3 in itertools.combinations_with_replacement(range(1, max_rank + 1), 3):
        if n3 > n1 + n2 or (n1 + n2 + n3) % 2:
            continue
        for a, b, c in itertools.product(range(C), repeat=3):
            # like ranks are interchangeable: keep one ordering of their channels
            if (n1 == n2 and a > b) or (n2 == n3 and b > c):
                continue
            level = lev(a, n1) + lev(b, n2) + lev(c, n3)
            if level <= L:
                out.append(Invariant(((a, n1), (b, n2), (c, n3)), level))
    return out


def enumerate_basis(invariants: list[Invariant], level: int) -> list[tuple[int, ...]]:
    """Multisets of invariants with total level <= level (products of invariants), in order of level."""
    order = sorted(range(len(invariants)), key=lambda n: invariants[n].level)
    levels = [invariants[n].level for n in order]
    out: list[tuple[int, ...]] = []

    def grow(start: int, remaining: int, prefix: tuple[int, ...]) -> None:
        for pos in range(start, len(order)):
            if levels[pos] > remaining:
                break
            item = (*prefix, order[pos])
            out.append(item)
            grow(pos, remaining - levels[pos], item)

    grow(0, level, ())
    out.sort(key=lambda f: (sum(invariants[n].level for n in f), len(f), f))
    return out
