"""Energy terms a learned potential can sit on top of: their energies, forces and stress simply add.

``zbl``   the universal screened nuclear repulsion of Ziegler, Biersack and Littmark, switched off smoothly between
          ``inner`` and ``outer`` (Å): a wall against collapsed atoms that a network trained on equilibrium data
          does not know, with no effect at bonding distances
``NAME``  any reference method mlpkit can label with (``gfn2`` = GFN2-xTB through tblite, ``emt``, ``pyscf``, ...):
          Δ-learning, the network learns the difference to that method
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from ase import Atoms
from vesin import NeighborList

from mlpkit.errors import InputError

#: e²/(4πε₀) in eV·Å
COULOMB = 14.399645
_ZBL_C = np.array([0.18175, 0.50986, 0.28022, 0.02817])
_ZBL_D = np.array([3.19980, 0.94229, 0.40290, 0.20162])


class Term:
    """An energy term: ``compute(images, stress)`` → energies (n,) eV, forces [(n_i, 3)] eV/Å, stress (n, 6) or None."""

    spec: str

    def compute(self, images: Sequence[Atoms], stress: bool) -> tuple[np.ndarray, list[np.ndarray], np.ndarray | None]:
        raise NotImplementedError


class ZBL(Term):
    """ZBL repulsion between every pair closer than ``outer`` Å, times a cosine switch from 1 at ``inner`` to 0 at
    ``outer``; the switched energy and its exact derivatives (forces, virial stress)."""

    def __init__(self, inner: float = 0.4, outer: float = 0.7):
        if not 0 < inner < outer:
            raise InputError(f"zbl needs 0 < inner < outer (Å), got inner={inner}, outer={outer}")
        self.inner, self.outer = float(inner), float(outer)
        self.spec = f"zbl:{self.inner}:{self.outer}"

    def pair_energy(self, r: np.ndarray, zi: np.ndarray, zj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Switched pair energy (P,) eV and its derivative d/dr (P,) eV/Å."""
        a = 0.46850 / (zi**0.23 + zj**0.23)
        x = r[:, None] / a[:, None]
        exp = np.exp(-_ZBL_D * x)
        phi = exp @ _ZBL_C
        dphi = -(exp * _ZBL_D) @ _ZBL_C / a
        pref = COULOMB * zi * zj
        e = pref * phi / r
        de = pref * (dphi / r - phi / r**2)
        t = np.clip((r - self.inner) / (self.outer - self.inner), 0.0, 1.0)
        sw = 0.5 * (1 + np.cos(np.pi * t))
        dsw = np.where((t > 0) & (t < 1), -0.5 * np.pi * np.sin(np.pi * t) / (self.outer - self.inner), 0.0)
        return e * sw, de * sw + e * dsw

    def compute(self, images, stress):
        energies, forces, stresses = [], [], []
        for atoms in images:
            n = len(atoms)
            periodic = bool(atoms.pbc.any())
            nl = NeighborList(cutoff=self.outer, full_list=False)
            i, j, d = nl.compute(atoms.positions, atoms.cell[:] if periodic else np.zeros((3, 3)), periodic, "ijD")
            r = np.linalg.norm(d, axis=1)
            z = atoms.numbers.astype(float)
            if len(r):
                e, de = self.pair_energy(r, z[i], z[j])
                g = (de / r)[:, None] * d  # dE/d(d_ij), d = x_j - x_i
            else:
                e, g = np.zeros(0), np.zeros((0, 3))
            f = np.zeros((n, 3))
            np.add.at(f, i, g)
            np.add.at(f, j, -g)
            energies.append(float(e.sum()))
            forces.append(f)
            if stress:
                row = np.full(6, np.nan)
                if atoms.pbc.all():
                    virial = d.T @ g
                    full = 0.5 * (virial + virial.T) / atoms.get_volume()
                    row = full[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
                stresses.append(row)
        return np.array(energies), forces, (np.array(stresses).reshape(-1, 6) if stress else None)


class MethodTerm(Term):
    """A reference method as an energy term (Δ-learning): ``gfn2``, ``emt``, or any labeler with its options."""

    #: options a term needs beyond a labeler's defaults: a term must be one smooth function of the positions, and
    #: tblite's default SCC convergence leaves ~1e-4 eV/Å of forces that depend on the previous call's wavefunction
    #: (a translated or permuted copy then gets other forces); 100x tighter removes it
    TERM_DEFAULTS: ClassVar[dict[str, dict]] = {"gfn2": {"accuracy": 0.01}, "gfn1": {"accuracy": 0.01}}

    def __init__(self, method: str, options: dict | None = None):
        from mlpkit.labelers import make_labeler

        options = {**self.TERM_DEFAULTS.get(str(method).lower(), {}), **dict(options or {})}
        self.labeler = make_labeler(method, **options)
        self.spec = method
        self.options = dict(options or {})
        self._calc = None

    def compute(self, images, stress):
        if self._calc is None:
            self._calc = self.labeler.calculator()
        energies, forces, stresses = [], [], []
        for atoms in images:
            work = atoms.copy()
            work.calc = self._calc
            energies.append(float(work.get_potential_energy()))
            forces.append(np.asarray(work.get_forces(), dtype=float))
            if stress:
                stresses.append(work.get_stress(voigt=True) if atoms.pbc.all() else np.full(6, np.nan))
        return np.array(energies), forces, (np.array(stresses).reshape(-1, 6) if stress else None)


def make_term(spec: str, options: dict | None = None) -> Term:
    """``"zbl"``, ``"zbl:INNER:OUTER"`` (Å), or a reference method name (with its ``options``)."""
    name, *rest = spec.split(":")
    if name == "zbl":
        try:
            return ZBL(*(float(x) for x in rest))
        except (TypeError, ValueError) as exc:
            raise InputError(f"baseline {spec!r}: write zbl or zbl:INNER:OUTER with distances in Å") from exc
    return MethodTerm(spec, options)
