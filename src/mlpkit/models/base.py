"""The one protocol every potential family follows, its prediction record, and safe save/load.

A potential is fitted on lists of ASE Atoms that carry reference results (a SinglePointCalculator with
``energy`` in eV and ``forces`` in eV/Å, as :meth:`mlpkit.data.Dataset.to_atoms` returns them), predicts
energy/forces/stress for lists of Atoms, knows its elements and cutoff, and saves to a directory:

``model.json``    family, hyperparameters, species, cutoff, metadata (method of the training data,
                  training-set hash, metrics, package version)
``weights.pt``    tensors only, read back with ``torch.load(weights_only=True)`` (never arbitrary pickle)
``members/``      sub-potentials, for potentials made of potentials (committees)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError, UnsupportedSpeciesError
from mlpkit.files import jsonable

MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.pt"


@dataclass
class Prediction:
    """Predictions for ``n`` configurations.

    energy:      (n,) eV, total potential energy
    forces:      list of n arrays (n_atoms_i, 3), eV/Å
    stress:      (n, 6) eV/Å³ in Voigt order (xx yy zz yz xz xy), ASE sign convention; None if not asked
    energy_std:  (n,) eV, spread of the total energy, for potentials that know their uncertainty
    forces_std:  list of n arrays (n_atoms_i, 3) eV/Å, per-component spread of the forces
    """

    energy: np.ndarray
    forces: list[np.ndarray]
    stress: np.ndarray | None = None
    energy_std: np.ndarray | None = None
    forces_std: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.energy)

    def max_force_deviation(self) -> np.ndarray | None:
        """(n,) eV/Å: max over atoms of the norm of the per-atom force std (DP-GEN's model deviation)."""
        if self.forces_std is None:
            return None
        return np.array([float(np.linalg.norm(s, axis=1).max()) for s in self.forces_std])


@dataclass
class FitHistory:
    """What happened during a fit: one dict of numbers per epoch, and why it stopped."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_valid_loss: float = float("nan")
    seconds: float = 0.0
    stopped_because: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class Potential(ABC):
    """Base of every potential family (see module docstring for the contract)."""

    #: registry name of the family, e.g. ``"bpnn"``
    family: ClassVar[str]
    #: chemical symbols the potential was built for, sorted by atomic number
    species: tuple[str, ...]
    #: interaction cutoff, Å
    cutoff: float
    #: free-form provenance written into model.json (method, training-set hash, metrics, version...)
    metadata: dict[str, Any]

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
    def has_uncertainty(self) -> bool:
        """True if :meth:`predict` fills ``energy_std`` and ``forces_std``."""
        return False

    def calculator(self, **kwargs):
        """An ASE calculator backed by this potential (energy, forces, stress, and uncertainties if known)."""
        from mlpkit.calculator import MLPCalculator

        return MLPCalculator(self, **kwargs)

    def check_species(self, images: Sequence[Atoms]) -> None:
        """Raise :class:`UnsupportedSpeciesError` if any configuration holds an element the model lacks."""
        known = set(self.species)
        for i, atoms in enumerate(images):
            extra = set(atoms.get_chemical_symbols()) - known
            if extra:
                raise UnsupportedSpeciesError(
                    f"configuration {i} contains {', '.join(sorted(extra))}, but this {self.family} potential "
                    f"was trained for {', '.join(self.species)} only"
                )


# -- registry ------------------------------------------------------------------------------------------

_FAMILIES: dict[str, type[Potential]] = {}


def register_family(cls: type[Potential]) -> type[Potential]:
    """Class decorator: make a family loadable by name from ``model.json``."""
    _FAMILIES[cls.family] = cls
    return cls


def family_class(name: str) -> type[Potential]:
    _import_builtin_families()
    if name not in _FAMILIES:
        raise InputError(f"unknown model family {name!r}; known: {', '.join(sorted(_FAMILIES))}")
    return _FAMILIES[name]


def known_families() -> list[str]:
    _import_builtin_families()
    return sorted(_FAMILIES)


def _import_builtin_families() -> None:
    import importlib

    for module in ("mlpkit.models.bpnn", "mlpkit.uncertainty.committee"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            # a family whose module is not written yet is simply not registered; other errors propagate
            if exc.name != module:
                raise


def load_potential(path: str | os.PathLike) -> Potential:
    """Load any saved potential: reads the family from ``model.json`` and dispatches to its class."""
    meta = read_model_json(path)
    return family_class(meta["family"]).load(path)


# -- the on-disk format --------------------------------------------------------------------------------


def read_model_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    file = path / MODEL_FILE
    if not file.exists():
        raise InputError(f"{path} is not a saved mlpkit model (no {MODEL_FILE})")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{file} is corrupt: {exc}") from exc


def write_model_dir(
    path: str | os.PathLike,
    model_json: dict,
    tensors: dict | None = None,
    members: Sequence[Potential] = (),
) -> None:
    """Write ``model.json`` (+ ``weights.pt`` of plain tensors, + ``members/i``) atomically.

    Everything goes to a temporary sibling directory first, which then replaces ``path``: a crash leaves
    either the old model or the new one, never a mix.
    """
    import torch

    from mlpkit import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        model_json = {"mlpkit_version": __version__, **model_json}
        (tmp / MODEL_FILE).write_text(json.dumps(jsonable(model_json), indent=2, sort_keys=True))
        if tensors is not None:
            torch.save(tensors, tmp / WEIGHTS_FILE)
        for i, member in enumerate(members):
            member.save(tmp / "members" / f"{i:02d}")
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def read_weights(path: str | os.PathLike) -> dict:
    import torch

    return torch.load(Path(path) / WEIGHTS_FILE, map_location="cpu", weights_only=True)


def training_set_hash(images: Sequence[Atoms]) -> str:
    """Order-independent hash of the training configurations (for provenance in model.json)."""
    import hashlib

    from mlpkit.data.hashing import configuration_hash

    h = hashlib.sha256()
    for key in sorted(configuration_hash(a) for a in images):
        h.update(key.encode())
    return h.hexdigest()[:16]


def methods_of(images: Sequence[Atoms]) -> list[str]:
    """Distinct ``method`` info values of labelled configurations (unknown ones as ``"unknown"``)."""
    return sorted({str(a.info.get("method", "unknown")) for a in images})


def reference_results(images: Sequence[Atoms]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Reference energies (n,) eV and forces list of (n_i, 3) eV/Å carried by labelled Atoms."""
    energies, forces = [], []
    for i, atoms in enumerate(images):
        calc = atoms.calc
        if calc is None or "energy" not in calc.results or "forces" not in calc.results:
            raise InputError(f"configuration {i} has no reference energy and forces")
        energies.append(float(calc.results["energy"]))
        forces.append(np.asarray(calc.results["forces"], dtype=float))
    return np.array(energies), forces
