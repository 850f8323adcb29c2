"""The radial distribution function g(r) of a periodic system over an MD trajectory, and the running coordination
number. Units: distances Å, densities atoms/Å³.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError


@dataclass
class RDF:
    """g(r) averaged over frames. r: (n_bins,) Å bin centres; g: (n_bins,); coordination: (n_bins,) running
    coordination number n(r) = 4πρ ∫₀ʳ g r'² dr'; pair: the element pair or "all"; density: atoms/Å³."""

    r: np.ndarray
    g: np.ndarray
    coordination: np.ndarray
    pair: str
    density: float
    first_peak: float = field(default=float("nan"))

    def to_dict(self) -> dict:
        return {"pair": self.pair, "first_peak_A": round(self.first_peak, 3), "density_per_A3": self.density}


def radial_distribution(
    frames: Sequence[Atoms],
    rmax: float | None = None,
    nbins: int = 200,
    pair: tuple[str, str] | None = None,
) -> RDF:
    """Radial distribution function of a periodic system, vectorised with vesin's neighbour list.

    ``rmax`` defaults to just under half the shortest perpendicular cell width of any frame (so no image is counted
    twice by the minimum-image picture; NPT cells change). ``pair=("O", "H")`` restricts centres to the first element
    and neighbours to the second. The normalisation is the ideal gas of the neighbour species at each frame's
    density, counting the other N-1 atoms for a same-element pair (so g → 1 at large r even in a small box).
    """
    from vesin import NeighborList

    if not frames:
        raise InputError("no frames for the RDF")
    first = frames[0]
    if not np.all(first.pbc):
        raise InputError("the RDF needs a cell periodic in all three directions")
    widths = [a.cell.volume / np.linalg.norm(np.cross(a.cell[[1, 2, 0]], a.cell[[2, 0, 1]]), axis=1) for a in frames]
    rmax = float(rmax) if rmax is not None else 0.49 * float(np.min(widths))
    if rmax <= 0:
        raise InputError(f"rmax must be > 0 Å, got {rmax}")
    edges = np.linspace(0.0, rmax, nbins + 1)
    counts = np.zeros(nbins)
    n_centres_total = 0
    density_sum = 0.0
    pairs_norm = 0.0  # Σ over frames of centres × neighbour density (atoms/Å³)
    nl = NeighborList(cutoff=rmax, full_list=True)
    for atoms in frames:
        symbols = np.array(atoms.get_chemical_symbols())
        centres = np.ones(len(atoms), bool) if pair is None else symbols == pair[0]
        neigh = np.ones(len(atoms), bool) if pair is None else symbols == pair[1]
        i, j, d = nl.compute(points=atoms.positions, box=atoms.cell[:], periodic=True, quantities="ijd")
        sel = centres[i] & neigh[j]
        counts += np.histogram(d[sel], bins=edges)[0]
        n_centres_total += int(centres.sum())
        density_sum += neigh.sum() / atoms.get_volume()
        same = pair is None or pair[0] == pair[1]
        pairs_norm += centres.sum() * (neigh.sum() - same) / atoms.get_volume()
    if n_centres_total == 0:
        raise InputError(f"no atoms of element {pair[0] if pair else '?'} in the trajectory")
    density = density_sum / len(frames)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = counts / (pairs_norm * shell) if pairs_norm > 0 else np.zeros(nbins)
    r = 0.5 * (edges[1:] + edges[:-1])
    coordination = np.cumsum(counts) / n_centres_total
    peak = float(r[np.argmax(g)]) if g.any() else float("nan")
    return RDF(
        r=r,
        g=g,
        coordination=coordination,
        pair="all" if pair is None else f"{pair[0]}-{pair[1]}",
        density=float(density),
        first_peak=peak,
    )
