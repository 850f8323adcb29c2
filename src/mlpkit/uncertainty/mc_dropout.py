"""Monte-Carlo dropout: keep dropout on at inference and read the spread of several stochastic passes.

Wraps any potential that implements ``predict_samples(images, n_samples, seed) -> list[Prediction]`` (the
Behler-Parrinello family does, when built with ``dropout > 0``). The mean of the passes is the prediction and
their population standard deviation the uncertainty, exactly as for a committee, so everything downstream
(calibration, the watchdog, selection) treats both estimators alike.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError
from mlpkit.potentials.base import Capabilities, FitHistory, Potential, Prediction
from mlpkit.potentials.registry import load_potential
from mlpkit.potentials.store import read_model_json, write_model_dir
from mlpkit.uncertainty.committee import combine_predictions


class MCDropout(Potential):
    """MC-dropout estimator around ``base`` (a potential with ``predict_samples``).

    n_samples: stochastic forward passes per prediction (more: smoother σ, proportionally slower)
    seed:      seed of the dropout masks; each call of :meth:`predict` advances it, so repeated calls on the
               same configuration do not reuse the same masks (an MD run sees fresh noise every step) while
               a fresh estimator with the same seed reproduces the same numbers.
    advance:   False keeps the same masks at every call (deterministic: finite-difference checks, relaxations)
    """

    family = "mc_dropout"
    capabilities = Capabilities(uncertainty="dropout", fit="members")

    def __init__(self, base: Potential, n_samples: int = 20, seed: int = 0, advance: bool = True):
        if not base.capabilities.samples:
            raise InputError(f"a {base.family} potential has no predict_samples(); MC-dropout needs one")
        if n_samples < 2:
            raise InputError(f"n_samples must be at least 2, got {n_samples}")
        self.base = base
        self.n_samples = int(n_samples)
        self.seed = int(seed)
        #: draw fresh masks at every call (MD); False: the same masks every call (a deterministic smooth function)
        self.advance = bool(advance)
        self._calls = 0
        self.species = tuple(base.species)
        self.cutoff = float(base.cutoff)
        self.metadata = dict(getattr(base, "metadata", {}))

    def fit(self, train: Sequence[Atoms], valid: Sequence[Atoms] | None = None, **settings) -> FitHistory:
        """Fit the wrapped potential (its dropout layers train as usual)."""
        history = self.base.fit(train, valid, **settings)
        self.metadata = dict(self.base.metadata)
        return history

    def predict_samples(self, images: Sequence[Atoms], *, stress: bool = False) -> list[Prediction]:
        seed = self.seed + self._calls
        if self.advance:
            self._calls += 1
        return list(self.base.predict_samples(images, self.n_samples, seed=seed, stress=stress))

    def predict(self, images: Sequence[Atoms], *, stress: bool = False) -> Prediction:
        """Mean and spread over the passes; energy, forces and stress of the mean come from the same masks, so the
        forces are minus the gradient of the energy and the stress its strain derivative."""
        self.check_species(images)
        return combine_predictions(self.predict_samples(images, stress=stress))

    def descriptors(self, images: Sequence[Atoms]) -> list[np.ndarray]:
        return self.base.descriptors(images)

    def save(self, path: str | os.PathLike) -> None:
        write_model_dir(
            path,
            {
                "family": self.family,
                "species": list(self.species),
                "cutoff": self.cutoff,
                "n_samples": self.n_samples,
                "seed": self.seed,
                "advance": self.advance,
                "n_members": 1,
                "metadata": self.metadata,
            },
            members=[self.base],
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> MCDropout:
        meta = read_model_json(path)
        base = load_potential(Path(path) / "members" / "00")
        return cls(
            base, n_samples=int(meta["n_samples"]), seed=int(meta["seed"]), advance=bool(meta.get("advance", True))
        )
