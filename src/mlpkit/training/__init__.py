"""Fitting potentials: loss on energies and forces, and a generic resumable trainer."""

from mlpkit.training.loss import energy_force_loss, summarize
from mlpkit.training.trainer import CHECKPOINT_FILE, FIT_DEFAULTS, KEEP_CHOICES, Trainer

__all__ = ["CHECKPOINT_FILE", "FIT_DEFAULTS", "KEEP_CHOICES", "Trainer", "energy_force_loss", "summarize"]
