"""What labelled configurations carry: reference results, level of theory, species, and a set's hash."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from mlpkit.data.hashing import configuration_hash
from mlpkit.errors import InputError


def training_set_hash(images: Sequence[Atoms]) -> str:
    """Order-independent hash of the training configurations (for provenance in model.json)."""
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


def reference_stress(atoms: Atoms) -> np.ndarray | None:
    """(6,) eV/Å³ Voigt reference stress of a fully periodic labelled configuration, else None."""
    calc = atoms.calc
    if calc is None or not atoms.pbc.all() or calc.results.get("stress") is None:
        return None
    stress = np.asarray(calc.results["stress"], dtype=float)
    return stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]] if stress.shape == (3, 3) else stress


def species_of(images: Sequence[Atoms]) -> tuple[str, ...]:
    """Elements present in ``images``, sorted by atomic number."""
    found = {s for a in images for s in a.get_chemical_symbols()}
    return tuple(sorted(found, key=lambda s: atomic_numbers[s]))
