"""Fitting potentials: typed fit settings, loss on energies and forces, and a generic resumable trainer.

This layer knows nothing of potential families: a family hands the trainer a torch module and a loss.
"""

from mlpkit.training.history import FitHistory
from mlpkit.training.loss import energy_force_loss, summarize
from mlpkit.training.settings import RUNTIME_DEFAULTS, TrainerSettings
from mlpkit.training.trainer import CHECKPOINT_FILE, FIT_DEFAULTS, KEEP_CHOICES, Trainer

__all__ = [
    "CHECKPOINT_FILE",
    "FIT_DEFAULTS",
    "KEEP_CHOICES",
    "RUNTIME_DEFAULTS",
    "FitHistory",
    "Trainer",
    "TrainerSettings",
    "energy_force_loss",
    "summarize",
]
