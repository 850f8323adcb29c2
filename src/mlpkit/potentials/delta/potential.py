"""Δ-learning: a potential of any family learns what a fixed energy term leaves over.

``E = E_term(R) + E_ML(R)``: the term (ZBL repulsion, GFN2-xTB, any reference method) is computed as it is, and the
learned model of ``family`` is fitted to the reference labels minus the term. Forces and stress add the same way.
Outside its data the learned part still extrapolates, but on top of a term that is physical everywhere (GFN2-xTB
breaks and bends bonds sensibly; ZBL keeps atoms apart), not on top of nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from pydantic import ConfigDict, Field

from mlpkit.data.records import reference_results
from mlpkit.errors import InputError
from mlpkit.potentials.base import Capabilities, FitHistory, Potential, Prediction
from mlpkit.potentials.delta.terms import make_term
from mlpkit.potentials.registry import create_potential, family_class, load_potential
from mlpkit.potentials.store import read_model_json, write_model_dir
from mlpkit.schema import Settings, validate_settings


class DeltaHyperparameters(Settings):
    """The term the learned model sits on and the learned model itself."""

    baseline: str = Field(
        "gfn2", description="zbl, zbl:INNER:OUTER (Å), or a reference method (gfn2, emt, pyscf, ...) as the term"
    )
    baseline_options: dict[str, Any] = Field(default_factory=dict, description="options of a reference-method term")
    learned_family: str = Field("bpnn", description="family of the learned part")
    learned_hyperparameters: dict[str, Any] = Field(
        default_factory=dict, description="hyperparameters of the learned part (its family's defaults otherwise)"
    )


class DeltaFitSettings(Settings):
    """The learned part's own fit settings (checked against its family when the fit starts)."""

    model_config = ConfigDict(extra="allow")


class DeltaPotential(Potential):
    """``term + learned`` (see the module docstring); the learned part's uncertainty is the whole model's."""

    family: ClassVar[str] = "delta"
    capabilities: ClassVar[Capabilities] = Capabilities(fit="members")
    Hyperparameters = DeltaHyperparameters
    FitSettings = DeltaFitSettings

    def __init__(self, learned: Potential, baseline: str = "gfn2", baseline_options: dict | None = None):
        if learned.family == self.family:
            raise InputError("the learned part of a delta potential cannot itself be a delta potential")
        self.learned = learned
        self.term = make_term(baseline, baseline_options)
        self.baseline, self.baseline_options = baseline, dict(baseline_options or {})
        self.species = tuple(learned.species)
        self.cutoff = float(learned.cutoff)
        self.metadata: dict[str, Any] = {}

    @property
    def uncertainty_kind(self) -> str:
        return self.learned.uncertainty_kind

    @classmethod
    def from_data(cls, train: Sequence[Atoms], **hyperparameters: Any) -> DeltaPotential:
        hp = validate_settings(DeltaHyperparameters, hyperparameters, "delta hyperparameter")
        family_class(hp.learned_family)  # a clear error for an unknown family
        learned = create_potential(hp.learned_family, train, **hp.learned_hyperparameters)
        return cls(learned, hp.baseline, hp.baseline_options)

    def residual_labels(self, images: Sequence[Atoms]) -> list[Atoms]:
        """Copies of labelled ``images`` whose energies and forces are the reference minus the term."""
        images = list(images)
        energies, forces = reference_results(images)
        e_term, f_term, _ = self.term.compute(images, stress=False)
        out = []
        for atoms, e, f, et, ft in zip(images, energies, forces, e_term, f_term, strict=True):
            copy = atoms.copy()
            copy.calc = SinglePointCalculator(copy, energy=e - et, forces=f - ft)
            out.append(copy)
        return out

    def fit(self, train: Sequence[Atoms], valid: Sequence[Atoms] | None = None, **settings: Any) -> FitHistory:
        start = time.perf_counter()
        self.check_species(train)
        history = self.learned.fit(
            self.residual_labels(train), self.residual_labels(valid) if valid else None, **settings
        )
        self.metadata = {
            **self.learned.metadata,
            "baseline": self.term.spec,
            "fit_seconds": time.perf_counter() - start,
        }
        return history

    def predict(self, images: Sequence[Atoms], *, stress: bool = False) -> Prediction:
        images = list(images)
        self.check_species(images)
        pred = self.learned.predict(images, stress=stress)
        e, f, s = self.term.compute(images, stress=stress)
        pred.energy = pred.energy + e
        pred.forces = [a + b for a, b in zip(pred.forces, f, strict=True)]
        if stress and pred.stress is not None and s is not None:
            pred.stress = pred.stress + s
        return pred

    def save(self, path: str | os.PathLike) -> None:
        write_model_dir(
            path,
            {
                "family": self.family,
                "species": list(self.species),
                "cutoff": self.cutoff,
                "baseline": self.baseline,
                "baseline_options": self.baseline_options,
                "n_members": 1,
                "metadata": self.metadata,
            },
            members=[self.learned],
        )

    @classmethod
    def load(cls, path: str | os.PathLike, **options: Any) -> DeltaPotential:
        meta = read_model_json(path)
        learned = load_potential(Path(path) / "members" / "00", **options)
        pot = cls(learned, meta["baseline"], meta.get("baseline_options"))
        pot.metadata = dict(meta.get("metadata", {}))
        return pot
