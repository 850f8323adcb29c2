"""The one protocol every potential family follows: what it can do, how it is built, fitted and asked.

A family is a subclass of :class:`Potential` that declares, as class attributes:

``family``            its registry name (``"bpnn"``, ``"gap"``, ...), written into ``model.json``
``capabilities``      a :class:`Capabilities`: forces, stress, which uncertainty it knows, whether it needs
                      training data, can be fine-tuned, how it fits
``Hyperparameters``   a pydantic model of its hyperparameters (unknown keys and bad values are refused with the
                      key path, by ``mlpkit check`` before any DFT runs)
``FitSettings``       a pydantic model of its fit settings (epochs and learning rates for a network, noise levels
                      for a GP, a ridge for a linear model, ...)

and implements ``from_data`` (an untrained potential with data-derived defaults), ``fit``, ``predict``, ``save``
and ``load``. Labelled configurations are ASE Atoms carrying a SinglePointCalculator with ``energy`` (eV) and
``forces`` (eV/Å) (as :meth:`mlpkit.data.Dataset.to_atoms` returns them). The shared checks every family passes
are in :mod:`mlpkit.testing`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from mlpkit.errors import InputError, UnsupportedSpeciesError
from mlpkit.schema import NoSettings, Settings, validate_settings
from mlpkit.training.history import FitHistory

#: what a potential's uncertainty is, and so what its per-configuration score means:
#: ``committee``/``dropout``/``variance``: max over atoms of the norm of the per-atom force std (eV/Å);
#: ``grade``: the extrapolation grade γ of a linear model's active set (dimensionless, > 1 outside the set)
UncertaintyKind = Literal["none", "committee", "dropout", "variance", "grade"]
#: how a family fits: ``epochs`` (the shared gradient trainer), ``closed_form`` (a linear solve), ``members``
#: (fits its member potentials), ``none`` (pretrained, used as it is)
FitKind = Literal["epochs", "closed_form", "members", "none"]


@dataclass(frozen=True)
class Capabilities:
    """What a family can do, declared once on its class (never probed with ``hasattr``)."""

    forces: bool = True
    stress: bool = True
    uncertainty: UncertaintyKind = "none"
    #: usable without training data (a pretrained universal potential)
    pretrained: bool = False
    #: ``fit`` on a few labels starts from the current weights (fine-tuning)
    fine_tunable: bool = False
    fit: FitKind = "epochs"
    #: ``predict_samples(images, n_samples, seed)`` gives stochastic passes (dropout kept on): MC-dropout wraps it
    samples: bool = False

    @property
    def uncertainty_unit(self) -> str:
        return {"none": "", "grade": "γ"}.get(self.uncertainty, "eV/Å")


@dataclass
class Prediction:
    """Predictions for ``n`` configurations.

    energy:      (n,) eV, total potential energy
    forces:      list of n arrays (n_atoms_i, 3), eV/Å
    stress:      (n, 6) eV/Å³ in Voigt order (xx yy zz yz xz xy), ASE sign convention; None if not asked
    energy_std:  (n,) eV, spread of the total energy, for potentials that know their uncertainty
    forces_std:  list of n arrays (n_atoms_i, 3) eV/Å, per-component spread of the forces
    uncertainty: (n,) per-configuration uncertainty score in the unit of the potential's uncertainty kind, for
                 kinds that are not a force spread (the extrapolation grade γ); see :meth:`score`
    atom_uncertainty: list of n arrays (n_atoms_i,), the per-atom score behind ``uncertainty`` (e.g. γ per atom)
    """

    energy: np.ndarray
    forces: list[np.ndarray]
    stress: np.ndarray | None = None
    energy_std: np.ndarray | None = None
    forces_std: list[np.ndarray] | None = None
    uncertainty: np.ndarray | None = None
    atom_uncertainty: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.energy)

    @classmethod
    def concatenate(cls, preds: Sequence[Prediction]) -> Prediction:
        """One prediction of all configurations of ``preds`` in order (fields kept where every part has them)."""
        preds = list(preds)

        def per_config(name: str) -> np.ndarray | None:
            parts = [getattr(p, name) for p in preds]
            if not parts or any(x is None for x in parts):
                return None
            return np.concatenate([np.asarray(x) for x in parts])

        def per_atom(name: str) -> list[np.ndarray] | None:
            parts = [getattr(p, name) for p in preds]
            return None if not parts or any(x is None for x in parts) else [np.asarray(a) for x in parts for a in x]

        return cls(
            energy=per_config("energy") if preds else np.zeros(0),
            forces=per_atom("forces") or [],
            stress=per_config("stress"),
            energy_std=per_config("energy_std"),
            forces_std=per_atom("forces_std"),
            uncertainty=per_config("uncertainty"),
            atom_uncertainty=per_atom("atom_uncertainty"),
        )

    def max_force_deviation(self) -> np.ndarray | None:
        """(n,) eV/Å: max over atoms of the norm of the per-atom force std (DP-GEN's model deviation)."""
        if self.forces_std is None:
            return None
        return np.array([float(np.linalg.norm(s, axis=1).max()) if len(s) else 0.0 for s in self.forces_std])

    def score(self) -> np.ndarray | None:
        """(n,) the one per-configuration uncertainty number active learning and the watchdog act on: ``uncertainty``
        where the potential gives it (γ), else the max per-atom force deviation (eV/Å); None without uncertainty."""
        if self.uncertainty is not None:
            return np.asarray(self.uncertainty, dtype=float)
        return self.max_force_deviation()


class Potential(ABC):
    """Base of every potential family (see the module docstring for what a family declares)."""

    #: registry name of the family, e.g. ``"bpnn"``
    family: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    Hyperparameters: ClassVar[type[Settings]] = NoSettings
    FitSettings: ClassVar[type[Settings]] = NoSettings
    #: fit keywords every family accepts beside its FitSettings (run-time options, not configuration)
    RUNTIME_FIT_OPTIONS: ClassVar[tuple[str, ...]] = ("seed", "progress", "checkpoint_dir", "warm_start", "callback")

    #: chemical symbols the potential was built for, sorted by atomic number
    species: tuple[str, ...]
    #: interaction cutoff, Å
    cutoff: float
    #: free-form provenance written into model.json (method, training-set hash, metrics, version...)
    metadata: dict[str, Any]

    @classmethod
    def from_data(cls, train: Sequence[Atoms], **hyperparameters: Any) -> Potential:
        """An untrained potential for the elements of ``train``, with defaults derived from the data."""
        raise InputError(f"the {cls.family} family cannot be built from training data")

    @classmethod
    def from_pretrained(cls, model: str | None = None, **options: Any) -> Potential:
        """A pretrained model by name (families with ``capabilities.pretrained``); never downloads."""
        raise InputError(f"the {cls.family} family has no pretrained models")

    @classmethod
    def check_pretrained(cls, model: str | None = None) -> None:
        """Raise InputError unless :meth:`from_pretrained` would find ``model`` here, without loading any weights
        (configuration checks call this before any calculation)."""
        raise InputError(f"the {cls.family} family has no pretrained models")

    @abstractmethod
    def fit(self, train: Sequence[Atoms], valid: Sequence[Atoms] | None = None, **settings) -> FitHistory:
        """Train on labelled configurations; ``valid`` drives early stopping where the family has epochs."""

    @abstractmethod
    def predict(self, images: Sequence[Atoms], *, stress: bool = False) -> Prediction:
        """Energies, forces (and stress for periodic cells when ``stress=True``) of each configuration."""

    @abstractmethod
    def save(self, path: str | os.PathLike) -> None:
        """Write the potential to directory ``path`` (created; replaced atomically if it exists)."""

    @classmethod
    @abstractmethod
    def load(cls, path: str | os.PathLike) -> Potential:
        """Read a potential written by :meth:`save`."""

    # -- shared behaviour --------------------------------------------------------------------------------

    @property
    def uncertainty_kind(self) -> str:
        """The kind of uncertainty :meth:`predict` reports (:data:`UncertaintyKind`)."""
        return self.capabilities.uncertainty

    @property
    def has_uncertainty(self) -> bool:
        """True if :meth:`predict` reports an uncertainty (``Prediction.score()`` is not None)."""
        return self.uncertainty_kind != "none"

    def calculator(self, **kwargs):
        """An ASE calculator backed by this potential (energy, forces, stress, and uncertainties if known)."""
        from mlpkit.potentials.calculator import MLPCalculator

        return MLPCalculator(self, **kwargs)

    def share_neighbors(self, others: Sequence[Potential]) -> None:
        """Let those of ``others`` that can use this potential's neighbour data share it (committee members during MD:
        one list per step instead of one per member). Families without such data do nothing."""
        return None

    def check_species(self, images: Sequence[Atoms]) -> None:
        """Raise :class:`UnsupportedSpeciesError` if any configuration holds an element the model lacks (one
        ``np.unique`` per configuration, no loop over atoms)."""
        known = {atomic_numbers[s] for s in self.species}
        for i, atoms in enumerate(images):
            extra = set(np.unique(atoms.numbers).tolist()) - known
            if extra:
                names = ", ".join(sorted(chemical_symbols[z] for z in extra))
                raise UnsupportedSpeciesError(
                    f"configuration {i} contains {names}, but this {self.family} potential "
                    f"was trained for {', '.join(self.species)} only"
                )

    def training_split(
        self, train: Sequence[Atoms], valid: Sequence[Atoms] | None, valid_fraction: float, seed: int
    ) -> tuple[list[Atoms], list[Atoms] | None]:
        """The configurations a fit trains and validates on: refuses an empty ``train`` or an element this potential
        does not know, and holds out ``valid_fraction`` of ``train`` (seeded) when no ``valid`` is given."""
        from mlpkit.data.dataset import holdout

        train = list(train)
        if not train:
            raise InputError("no training configurations")
        self.check_species(train)
        train, valid = holdout(train, valid, valid_fraction, seed)
        if valid:
            self.check_species(valid)
        return train, valid

    @classmethod
    def fit_settings(cls, settings: Mapping[str, Any] | None = None) -> tuple[Settings, dict[str, Any]]:
        """Split ``settings`` into the family's validated :attr:`FitSettings` and the run-time options.

        Raises :class:`InputError` naming every bad key, with the allowed ones.
        """
        settings = {k: v for k, v in dict(settings or {}).items() if v is not None}
        runtime = {k: settings.pop(k) for k in list(settings) if k in cls.RUNTIME_FIT_OPTIONS}
        return validate_settings(cls.FitSettings, settings, f"{cls.family} fit setting"), runtime
