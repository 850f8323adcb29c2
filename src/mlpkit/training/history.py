"""The record of a fit, shared by every family and the trainer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class FitHistory:
    """What happened during a fit: one dict of numbers per epoch (or per solve), and why it stopped."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_valid_loss: float = float("nan")
    seconds: float = 0.0
    stopped_because: str = ""

    def to_dict(self) -> dict:
        return asdict(self)
