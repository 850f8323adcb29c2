"""Potential families behind one protocol, found through one registry.

``create_potential(family, train, **hyperparameters)`` builds an untrained potential whose species and default
hyperparameters come from the training data; then ``pot.fit(train, valid, **fit_settings)``. A family's typed
settings are ``family_class(name).Hyperparameters`` and ``.FitSettings``; what it can do is ``.capabilities``.
``load_potential(path)`` reads any saved potential (or names a pretrained one). The contract every family passes
ships in :mod:`mlpkit.testing`.
"""

from mlpkit.potentials.base import Capabilities, FitHistory, Potential, Prediction, UncertaintyKind
from mlpkit.potentials.registry import (
    create_potential,
    family_class,
    known_families,
    load_potential,
    register_family,
    unregister_family,
)
from mlpkit.schema import NoSettings, Settings

__all__ = [
    "Capabilities",
    "FitHistory",
    "NoSettings",
    "Potential",
    "Prediction",
    "Settings",
    "UncertaintyKind",
    "create_potential",
    "family_class",
    "known_families",
    "load_potential",
    "register_family",
    "unregister_family",
]
