"""The labeler interface: a reference method that turns a configuration into energy, forces (and stress).

A labeler is small, picklable configuration (so Dask can ship it to workers); the heavy objects (SCF
solvers, calculators) are built lazily inside the worker process and reused between calls there.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from mlpkit.data.dataset import Label
from mlpkit.data.structures import check_structure
from mlpkit.errors import LabelFailure, UnsupportedSpeciesError


class Labeler(ABC):
    """A reference method. Subclasses set ``name`` and implement :meth:`_compute` (and ``method``)."""

    #: short registry name, e.g. ``"pyscf"``
    name: ClassVar[str]
    #: elements the method handles (atomic numbers); None means "any"
    supported_numbers: ClassVar[frozenset[int] | None] = None

    @property
    @abstractmethod
    def method(self) -> str:
        """Level of theory recorded with every label, e.g. ``pyscf:PBE/def2-SVP``."""

    @abstractmethod
    def _compute(self, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray | None]:
        """Energy (eV), forces (n, 3) eV/Å, stress (6,) eV/Å³ or None. Raise LabelFailure on failure."""

    @abstractmethod
    def calculator(self) -> Calculator:
        """An ASE calculator for the same method (to drive MD, relaxations, vibrations)."""

    def check(self, atoms: Atoms) -> None:
        """Refuse input the method cannot handle, before any expensive work (raises InputError)."""
        check_structure(atoms)
        if self.supported_numbers is not None:
            from ase.data import chemical_symbols

            bad = sorted(set(int(z) for z in atoms.numbers) - set(self.supported_numbers))
            if bad:
                raise UnsupportedSpeciesError(
                    f"{self.method} cannot handle element(s) {', '.join(chemical_symbols[z] for z in bad)}"
                )

    def label(self, atoms: Atoms) -> Label:
        """Run the reference calculation; the result is validated (finite, right shapes) before it returns."""
        self.check(atoms)
        start = time.perf_counter()
        try:
            energy, forces, stress = self._compute(atoms.copy())
        except LabelFailure:
            raise
        except Exception as exc:  # the code's own error types vary; keep its message for the record
            raise LabelFailure(f"{type(exc).__name__}: {exc}") from exc
        label = Label(
            energy=float(energy),
            forces=np.asarray(forces, dtype=float),
            stress=None if stress is None else np.asarray(stress, dtype=float),
            seconds=time.perf_counter() - start,
        )
        label.validate(len(atoms))
        return label

    def spec(self) -> dict:
        """Plain dict that :func:`mlpkit.labelers.make_labeler` turns back into an equal labeler."""
        return {"method": self.name, **self._spec_kwargs()}

    def _spec_kwargs(self) -> dict:
        return {}

    def __repr__(self) -> str:
        kw = ", ".join(f"{k}={v!r}" for k, v in self._spec_kwargs().items())
        return f"{type(self).__name__}({kw})"


class CalculatorLabeler(Labeler):
    """A labeler that computes through an ASE calculator built by :meth:`calculator`."""

    _calc: Calculator | None = None

    def _compute(self, atoms: Atoms):
        if self._calc is None:
            self._calc = self.calculator()
        atoms.calc = self._calc
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        stress = atoms.get_stress(voigt=True) if atoms.pbc.all() and self.computes_stress else None
        return energy, forces, stress

    computes_stress: ClassVar[bool] = True

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_calc"] = None  # calculators are rebuilt in the worker, never pickled
        return state
