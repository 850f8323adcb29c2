"""ASE's EMT: an effective-medium toy potential for fast unit tests only (never for science)."""

from __future__ import annotations

from typing import ClassVar

from ase.calculators.emt import EMT

from mlpkit.labelers.base import CalculatorLabeler


class EMTLabeler(CalculatorLabeler):
    """EMT energies/forces/stress. Knows H, C, N, O, Al, Ni, Cu, Pd, Ag, Pt, Au."""

    name = "emt"
    supported_numbers: ClassVar[frozenset[int]] = frozenset({1, 6, 7, 8, 13, 28, 29, 46, 47, 78, 79})

    @property
    def method(self) -> str:
        return "emt"

    def calculator(self) -> EMT:
        return EMT()
