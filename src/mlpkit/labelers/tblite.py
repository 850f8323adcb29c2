"""GFN2-xTB (or GFN1/IPEA1) through tblite: a fast semi-empirical stand-in for DFT, molecules and cells."""

from __future__ import annotations

from typing import ClassVar

from mlpkit.errors import InputError
from mlpkit.labelers.base import CalculatorLabeler

_METHODS = {"gfn2": "GFN2-xTB", "gfn1": "GFN1-xTB", "ipea1": "IPEA1-xTB"}


class TBLiteLabeler(CalculatorLabeler):
    """tblite's xTB Hamiltonians. ``accuracy`` and ``electronic_temperature`` (K) are passed to tblite."""

    name = "gfn2"
    # GFN2-xTB is parametrised for H-Rn (Z = 1-86).
    supported_numbers: ClassVar[frozenset[int]] = frozenset(range(1, 87))

    def __init__(
        self,
        hamiltonian: str = "gfn2",
        accuracy: float = 1.0,
        electronic_temperature: float = 300.0,
        charge: int = 0,
        spin: int = 0,
        max_iterations: int = 250,
    ):
        key = hamiltonian.lower().replace("-xtb", "")
        if key not in _METHODS:
            raise InputError(f"tblite hamiltonian must be one of {sorted(_METHODS)}, not {hamiltonian!r}")
        self.hamiltonian = key
        self.accuracy = float(accuracy)
        self.electronic_temperature = float(electronic_temperature)
        self.charge = int(charge)
        self.spin = int(spin)
        self.max_iterations = int(max_iterations)

    @property
    def method(self) -> str:
        return f"tblite:{_METHODS[self.hamiltonian]}"

    def _spec_kwargs(self) -> dict:
        return {
            "hamiltonian": self.hamiltonian,
            "accuracy": self.accuracy,
            "electronic_temperature": self.electronic_temperature,
            "charge": self.charge,
            "spin": self.spin,
            "max_iterations": self.max_iterations,
        }

    def calculator(self):
        from tblite.ase import TBLite

        return TBLite(
            method=_METHODS[self.hamiltonian],
            accuracy=self.accuracy,
            electronic_temperature=self.electronic_temperature,
            charge=self.charge,
            multiplicity=self.spin + 1,
            max_iterations=self.max_iterations,
            verbosity=0,
        )
