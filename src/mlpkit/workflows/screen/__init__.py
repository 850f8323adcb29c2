"""``mlpkit screen``: rank candidate structures with a (universal) potential, label the top k with a reference method,
optionally in a closed loop that fine-tunes the model on the labels after each round."""

from mlpkit.workflows.screen.candidates import Score, read_candidates
from mlpkit.workflows.screen.run import Screen, ScreenSettings, screen

__all__ = ["Score", "Screen", "ScreenSettings", "read_candidates", "screen"]
