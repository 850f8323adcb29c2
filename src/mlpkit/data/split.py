"""Splitting a list of configurations: seeded random parts by fraction, and the validation set of a fit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError


def split_images(images: Sequence[Atoms], fractions: Sequence[float], seed: int = 0) -> list[list[Atoms]]:
    """Shuffle (seeded) and cut a list of configurations into consecutive parts with the given fractions."""
    if abs(sum(fractions) - 1) > 1e-9 or min(fractions) < 0:
        raise InputError(f"fractions must be non-negative and sum to 1, got {list(fractions)}")
    order = np.random.default_rng(seed).permutation(len(images))
    bounds = np.round(np.cumsum([0, *fractions]) * len(images)).astype(int)
    return [[images[i] for i in order[a:b]] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def holdout(
    train: Sequence[Atoms], valid: Sequence[Atoms] | None, fraction: float, seed: int = 0
) -> tuple[list[Atoms], list[Atoms] | None]:
    """``(train, valid)`` for a fit: ``valid`` as given, or a seeded ``fraction`` of ``train`` held out when none is
    given (at least 4 configurations needed); None when there is no validation data."""
    train = list(train)
    if valid is None and fraction > 0 and len(train) >= 4:
        train, valid = split_images(train, [1 - fraction, fraction], seed=seed)
    return train, (list(valid) if valid else None)
