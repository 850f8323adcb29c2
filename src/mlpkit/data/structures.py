"""Reading structures from files or names, and sanity checks on geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError

#: Two atoms closer than this (Å) are "on top of each other": no reference method gives a sane answer.
MIN_INTERATOMIC_DISTANCE = 0.5


def read_structures(source: str | Path, index: str | int = ":") -> list[Atoms]:
    """Read structures from any file ASE reads, or build a molecule from an ASE/G2 name (``"H2O"``).

    Raises :class:`InputError` with one clear sentence for a missing, empty, truncated or garbled file.
    """
    from ase.io import read

    path = Path(source)
    if path.exists():
        if path.is_dir():
            raise InputError(f"{path} is a directory, not a structure file")
        if path.stat().st_size == 0:
            raise InputError(f"{path} is empty")
        try:
            images = read(path, index=index)
        except Exception as exc:  # ASE raises many types for bad files; the user needs the file and reason
            raise InputError(f"cannot read structures from {path}: {type(exc).__name__}: {exc}") from exc
        if isinstance(images, Atoms):
            images = [images]
        images = list(images)
        if not images:
            raise InputError(f"{path} holds no structures")
        for i, atoms in enumerate(images):
            check_structure(atoms, where=f"{path} frame {i}")
        return images
    if any(sep in str(source) for sep in ("/", "\\")) or Path(str(source)).suffix:
        raise InputError(f"structure file {source} does not exist")
    return [molecule_from_name(str(source))]


def molecule_from_name(name: str, vacuum: float = 5.0) -> Atoms:
    """A molecule from ASE's G2 collection (e.g. ``H2O``, ``CH3CH2OH``) centred in a box with ``vacuum`` Å."""
    from ase.build import molecule
    from ase.collections import g2

    if name not in g2.names:
        raise InputError(
            f"{name!r} is neither an existing file nor a molecule name ASE knows (see ase.collections.g2.names)"
        )
    atoms = molecule(name)
    atoms.center(vacuum=vacuum)
    atoms.pbc = False
    return atoms


def check_structure(atoms: Atoms, where: str = "structure") -> None:
    """Refuse empty structures, non-finite coordinates and atoms on top of each other."""
    if len(atoms) == 0:
        raise InputError(f"{where} has no atoms")
    if not np.all(np.isfinite(atoms.positions)):
        raise InputError(f"{where} has non-finite coordinates")
    if len(atoms) > 1:
        from ase.geometry import get_distances

        if len(atoms) <= 2000:
            _, d = get_distances(atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
            d = d[np.triu_indices(len(atoms), k=1)]
            dmin = float(d.min()) if d.size else np.inf
        else:
            from vesin import NeighborList

            nl = NeighborList(cutoff=MIN_INTERATOMIC_DISTANCE, full_list=False)
            box = atoms.cell[:] if atoms.pbc.any() else np.zeros((3, 3))
            (dists,) = nl.compute(points=atoms.positions, box=box, periodic=bool(atoms.pbc.any()), quantities="d")
            dmin = float(dists.min()) if len(dists) else np.inf
        if dmin < MIN_INTERATOMIC_DISTANCE:
            raise InputError(
                f"{where}: two atoms are {dmin:.3f} Å apart (< {MIN_INTERATOMIC_DISTANCE} Å), on top of each other"
            )
