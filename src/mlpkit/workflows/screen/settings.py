"""The settings of ``mlpkit screen`` (the command's options) and their range checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlpkit.errors import InputError

OPTIMIZERS = ("BFGS", "FIRE")


@dataclass
class ScreenSettings:
    """What ``mlpkit screen`` does (the command's options)."""

    model: str = "chgnet"
    relax: bool = False
    fmax: float = 0.05
    max_steps: int = 200
    optimizer: str = "BFGS"
    top: int = 10
    score: str = "energy_per_atom"
    references: str | None = None  # "H=-13.6,O=-2041" (eV/atom) or a file/directory of elemental structures
    rounds: int = 1
    distinct: float = 0.0  # pass over picks within this score of a pick of the same formula (0: off)
    fit: dict[str, Any] = field(default_factory=dict)  # fine-tune settings of rounds after the first
    workers: int = 2
    scheduler: str | None = None
    cluster_config: str | None = None
    seed: int = 0

    def check(self) -> None:
        """Raise :class:`InputError` on a setting out of range (before any candidate is read)."""
        if self.top < 1:
            raise InputError(f"--top must be at least 1, got {self.top}")
        if self.rounds < 1:
            raise InputError(f"--rounds must be at least 1, got {self.rounds}")
        if self.distinct < 0:
            raise InputError(f"--distinct must be >= 0, got {self.distinct}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}")
