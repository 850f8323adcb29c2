"""Any ASE calculator by import path and keyword arguments (VASP, Quantum ESPRESSO, CP2K, ORCA, ...)."""

from __future__ import annotations

import importlib
import os
import socket
from pathlib import Path
from typing import Any

from mlpkit.errors import InputError, MissingDependencyError
from mlpkit.labelers.base import CalculatorLabeler


class ASECalculatorLabeler(CalculatorLabeler):
    """Label with ``calculator`` = ``"package.module:ClassName"`` (or ``package.module.ClassName``).

    ``parameters`` are passed to the class; ``level_of_theory`` is recorded as the method
    (``ase:<level_of_theory>``) so data from two set-ups never mix silently. Stress is asked for on
    fully periodic cells unless ``stress=False``.
    """

    name = "ase"

    def __init__(
        self,
        calculator: str,
        parameters: dict[str, Any] | None = None,
        level_of_theory: str | None = None,
        stress: bool = True,
    ):
        if not calculator or not isinstance(calculator, str):
            raise InputError("the 'ase' method needs calculator='module:ClassName'")
        self.calculator_path = calculator
        self.parameters = dict(parameters or {})
        self.level_of_theory = level_of_theory or calculator.replace(":", ".").split(".")[-1]
        self.computes_stress = bool(stress)  # type: ignore[misc]
        self._resolve()  # fail now, not on a worker an hour later

    @property
    def method(self) -> str:
        return f"ase:{self.level_of_theory}"

    def _spec_kwargs(self) -> dict:
        return {
            "calculator": self.calculator_path,
            "parameters": self.parameters,
            "level_of_theory": self.level_of_theory,
            "stress": self.computes_stress,
        }

    def _resolve(self):
        path = self.calculator_path
        module_name, _, class_name = path.partition(":") if ":" in path else path.rpartition(".")
        if not module_name or not class_name:
            raise InputError(f"calculator must look like 'ase.calculators.vasp:Vasp', got {path!r}")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise MissingDependencyError(f"cannot import {module_name} for calculator {path!r}: {exc}") from exc
        try:
            return getattr(module, class_name)
        except AttributeError as exc:
            raise InputError(f"{module_name} has no {class_name}") from exc

    def calculator(self):
        cls = self._resolve()
        parameters = dict(self.parameters)
        if _writes_files(cls):
            # File-based codes (VASP, QE, CP2K...) write fixed file names into their directory: every worker
            # process gets its own, or parallel labels overwrite each other's input and output.
            base = Path(parameters.pop("directory", "mlpkit-calc"))
            parameters["directory"] = str(base / f"{socket.gethostname()}-{os.getpid()}")
        return cls(**parameters)


def _writes_files(cls) -> bool:
    """True for calculators that run an external code through files in a working directory."""
    import inspect

    from ase.calculators.calculator import FileIOCalculator
    from ase.calculators.genericfileio import GenericFileIOCalculator

    if isinstance(cls, type) and issubclass(cls, (FileIOCalculator, GenericFileIOCalculator)):
        return True
    try:
        explicit = "directory" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        explicit = False
    # CP2K-style shell drivers declare a class-level command instead
    return explicit or hasattr(cls, "command")
