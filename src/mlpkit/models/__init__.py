"""Potential families behind one protocol (:class:`mlpkit.models.base.Potential`).

``create_potential(family, train, **hyperparameters)`` builds an untrained potential whose species and default
descriptor parameters come from the training data; then ``pot.fit(train, valid, **fit_settings)``.

Fit settings (``fit_settings``; defaults in :data:`mlpkit.training.FIT_DEFAULTS`):

=================  ==========================================================================================
``epochs``         maximum passes over the training data
``force_weight``   weight of the force MSE (eV²/Å²) against the per-atom energy MSE (eV²/atom²)
``learning_rate``  initial Adam learning rate; ``lr_final`` the last one; ``scheduler`` exponential/cosine/plateau
``batch_size``     configurations per optimiser step
``patience``       epochs without improvement of the validation loss before stopping (best weights are kept)
``valid_fraction`` part of ``train`` held out for validation when no ``valid`` set is given
``seed``           seeds the split, the batch order and anything random in training
``checkpoint_dir`` where checkpoints go every ``checkpoint_every`` epochs; a killed run resumes from there
``warm_start``     continue from the current weights and normalisation (active-learning retraining)
``progress``       show a progress bar with the current losses
=================  ==========================================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ase import Atoms

from mlpkit.errors import InputError
from mlpkit.models.base import FitHistory, Potential, Prediction, family_class, known_families, register_family

#: The fit settings every family built on :class:`mlpkit.training.Trainer` accepts, with defaults.
fit_settings = (
    "epochs",
    "force_weight",
    "learning_rate",
    "lr_final",
    "scheduler",
    "batch_size",
    "patience",
    "valid_fraction",
    "seed",
    "checkpoint_dir",
    "checkpoint_every",
    "warm_start",
    "progress",
)


def create_potential(family: str, train: Sequence[Atoms], **hyperparameters: Any) -> Potential:
    """An untrained potential of ``family`` for the elements of ``train``, with data-derived defaults.

    ``hyperparameters`` override the family's defaults (for ``"bpnn"``: see
    :class:`mlpkit.models.bpnn.BPNNPotential`).
    """
    train = list(train)
    if not train:
        raise InputError("create_potential needs the training configurations (to choose species and defaults)")
    cls = family_class(family)
    if family == "bpnn":
        from mlpkit.models.bpnn import default_hyperparameters, species_of

        return cls(species_of(train), **default_hyperparameters(train, **hyperparameters))
    if hasattr(cls, "from_training_data"):
        return cls.from_training_data(train, **hyperparameters)
    raise InputError(f"family {family!r} cannot be created from training data by create_potential")


__all__ = [
    "FitHistory",
    "Potential",
    "Prediction",
    "create_potential",
    "family_class",
    "fit_settings",
    "known_families",
    "register_family",
]
