"""The optional two-body term of a GAP: a GP on interatomic distances, per pair of elements.

``E_2b = ½ Σ_{i≠j} Σ_m w_m k₂(r_ij, r_m)`` over the pairs within the cutoff (each pair once, from the full list),
``k₂(r, r') = f_c(r) f_c(r') exp(-(r - r')² / 2θ²)`` with the same shifted-cosine cutoff as the SOAP term. The sparse
points ``r_m`` of each element pair are a uniform grid from the shortest distance seen in the training data
(- 0.1 Å) to the cutoff. Its rows (energy, forces, dE/dε) are columns beside the SOAP ones in the same solve, with
their own prior scale ``δ_2b``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from ase.neighborlist import neighbor_list
from scipy import sparse as sp


def cutoff_function(r: np.ndarray, cutoff: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Shifted cosine f_c(r) (1 below cutoff - width, 0 beyond cutoff) and its derivative (Å⁻¹)."""
    x = np.clip((r - (cutoff - width)) / width, 0.0, 1.0)
    fc = 0.5 * (1 + np.cos(np.pi * x))
    dfc = np.where((x > 0) & (x < 1), -0.5 * np.pi / width * np.sin(np.pi * x), 0.0)
    return fc, dfc


class TwoBody:
    """Pair distances of a batch and the kernel rows of the two-body GP.

    species: element symbols; cutoff, smoothing (Å): as the SOAP term; width θ (Å) of the squared-exponential kernel.
    """

    def __init__(self, species: Sequence[str], cutoff: float, smoothing: float, width: float):
        self.species = tuple(species)
        self.numbers = np.array([atomic_numbers[s] for s in self.species])
        self.cutoff, self.smoothing, self.width = float(cutoff), float(smoothing), float(width)
        n = len(self.species)
        #: index of the element pair (a ≤ b) of two element indices
        self.pair_type = np.zeros((n, n), dtype=np.int64)
        t = 0
        for a in range(n):
            for b in range(a, n):
                self.pair_type[a, b] = self.pair_type[b, a] = t
                t += 1
        self.n_types = t

    def pairs(self, images: Sequence[Atoms]) -> dict[str, np.ndarray]:
        """Full pair list of a batch: ``i``, ``j`` (batch atom indices), ``vec`` (r_j - r_i + shift, Å), ``r`` (Å),
        ``type`` (element-pair index), ``system``."""
        parts = {k: [] for k in ("i", "j", "vec", "type", "system")}
        offset = 0
        for k, atoms in enumerate(images):
            i, j, d = neighbor_list("ijD", atoms, self.cutoff)
            el = np.searchsorted(self.numbers, atoms.numbers)
            parts["i"].append(i + offset)
            parts["j"].append(j + offset)
            parts["vec"].append(d)
            parts["type"].append(self.pair_type[el[i], el[j]])
            parts["system"].append(np.full(len(i), k))
            offset += len(atoms)
        out = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
        out["vec"] = out["vec"].reshape(-1, 3)
        for key in ("i", "j", "type", "system"):
            out[key] = out[key].astype(np.int64)
        out["r"] = np.linalg.norm(out["vec"], axis=1)
        return out

    def grid(self, images: Sequence[Atoms], n_points: int) -> list[np.ndarray]:
        """Sparse distances per element pair (Å): n_points from the shortest seen - 0.1 Å to the cutoff (none for a
        pair never within the cutoff)."""
        p = self.pairs(images)
        out = []
        for t in range(self.n_types):
            r = p["r"][p["type"] == t]
            if len(r) == 0:
                out.append(np.zeros(0))
                continue
            out.append(np.linspace(max(0.1, float(r.min()) - 0.1), self.cutoff, n_points + 1)[:-1])
        return out

    def kernel(self, r: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """k₂(r, r_m) (n, M_t) and its derivative with respect to r (Å⁻¹)."""
        fc, dfc = cutoff_function(r, self.cutoff, self.smoothing)
        fm, _ = cutoff_function(points, self.cutoff, self.smoothing)
        diff = r[:, None] - points[None, :]
        g = np.exp(-(diff**2) / (2 * self.width**2)) * fm[None, :]
        return fc[:, None] * g, dfc[:, None] * g - fc[:, None] * g * diff / self.width**2

    def kmm(self, points: np.ndarray) -> np.ndarray:
        """k₂ between the sparse distances of one pair type (M_t, M_t)."""
        return self.kernel(points, points)[0]

    def rows(
        self, images: Sequence[Atoms], points: Sequence[np.ndarray], *, forces: bool = True, strain: bool = False
    ) -> dict[str, np.ndarray]:
        """Two-body rows of a batch: ``energy`` (n_systems, M2), ``forces`` (n_atoms, 3, M2), ``virial``
        (n_systems, 3, 3, M2) (dE/dε), columns pair type after pair type."""
        n_sys, n_atoms = len(images), sum(len(a) for a in images)
        cols = np.cumsum([0, *[len(p) for p in points]])
        m2 = int(cols[-1])
        out = {"energy": np.zeros((n_sys, m2))}
        if forces:
            out["forces"] = np.zeros((n_atoms, 3, m2))
        if strain:
            out["virial"] = np.zeros((n_sys, 3, 3, m2))
        p = self.pairs(images)
        for t, pts in enumerate(points):
            sel = np.flatnonzero(p["type"] == t)
            if len(pts) == 0 or len(sel) == 0:
                continue
            lo, hi = cols[t], cols[t + 1]
            k, dk = self.kernel(p["r"][sel], pts)
            k, dk = 0.5 * k, 0.5 * dk  # each pair appears twice in the full list
            system = p["system"][sel]
            out["energy"][:, lo:hi] += _scatter(system, n_sys) @ k
            unit = p["vec"][sel] / p["r"][sel][:, None]
            if forces:
                g = (unit[:, :, None] * dk[:, None, :]).reshape(len(sel), -1)  # dE/dr_j per pair (3·M_t)
                block = (_scatter(p["i"][sel], n_atoms) - _scatter(p["j"][sel], n_atoms)) @ g
                out["forces"][:, :, lo:hi] += block.reshape(n_atoms, 3, -1)  # F = -dE/dr
            if strain:
                outer = (p["vec"][sel][:, :, None] * unit[:, None, :]).reshape(len(sel), 9)  # D⊗D / r
                v = (outer[:, :, None] * dk[:, None, :]).reshape(len(sel), -1)
                out["virial"][:, :, :, lo:hi] += (_scatter(system, n_sys) @ v).reshape(n_sys, 3, 3, -1)
        return out


def _scatter(index: np.ndarray, n: int) -> sp.csr_matrix:
    m = len(index)
    return sp.csr_matrix((np.ones(m), (index, np.arange(m))), shape=(n, m))
