"""Reading structures from files or names, and sanity checks on geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.data.boxes import box_from_spec, is_box_spec
from mlpkit.errors import InputError

#: Two atoms closer than this (Å) are "on top of each other": no reference method gives a sane answer.
MIN_INTERATOMIC_DISTANCE = 0.5


def read_structures(source: str | Path, index: str | int = ":", *, seed: int = 0) -> list[Atoms]:
    """Read structures from any file ASE reads (periodic cells too: POSCAR, CIF, extxyz with a lattice), build a
    molecule from an ASE/G2 name (``"H2O"``), or a periodic box of molecules from a spec (``"water-box:32"``,
    ``"CH3OH-box:20@0.79"``: see :func:`structure_from_name`; ``seed`` places its molecules).

    Raises :class:`InputError` with one clear sentence for a missing, empty, truncated or garbled file.
    """
    from ase.io import read

    path = Path(source)
    if isinstance(source, str) and is_box_spec(source) and not path.exists():
        return [structure_from_name(source, seed=seed)]
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
    return [structure_from_name(str(source), seed=seed)]


def structure_from_name(name: str, *, vacuum: float = 5.0, seed: int = 0) -> Atoms:
    """A structure named without a file: a G2 molecule (``H2O``, in a box with ``vacuum`` Å, non-periodic) or a
    periodic box of molecules, ``NAME-box:N[@DENSITY]`` (``water-box:32``: 32 H2O at 1.0 g/cm³; ``CH3OH-box:20@0.79``:
    density in g/cm³, default the liquid's from :data:`mlpkit.data.boxes.LIQUID_DENSITY`), placed with ``seed``."""
    if is_box_spec(name):
        return box_from_spec(name, seed=seed)
    return molecule_from_name(name, vacuum=vacuum)


def structure_elements(source: str, base_dir: str | Path = ".", index: int = 0) -> tuple[set[str], bool]:
    """(elements, periodic in all three directions) of what ``source`` names, without packing a box: a file
    (relative to ``base_dir``; frame ``index``), a box spec (its molecule's elements; periodic) or a G2 molecule name
    (non-periodic). Raises :class:`InputError` for what cannot be read."""
    from mlpkit.data.boxes import parse_box_spec

    path = Path(source).expanduser()
    path = path if path.is_absolute() else Path(base_dir) / path
    if path.exists():
        images = read_structures(path)
        if not -len(images) <= index < len(images):
            raise InputError(f"frame {index} is out of range: {path} holds {len(images)} frames")
        atoms = images[index]
        return set(atoms.get_chemical_symbols()), bool(atoms.pbc.all())
    if is_box_spec(source):
        name, _, _ = parse_box_spec(source)
        return set(molecule_from_name(name).get_chemical_symbols()), True
    if any(sep in str(source) for sep in ("/", "\\")) or Path(str(source)).suffix:
        raise InputError(f"structure file {path} does not exist")
    return set(molecule_from_name(str(source)).get_chemical_symbols()), False


def molecule_from_name(name: str, vacuum: float = 5.0) -> Atoms:
    """A molecule from ASE's G2 collection (e.g. ``H2O``, ``CH3CH2OH``) centred in a box with ``vacuum`` Å."""
    from ase.build import molecule
    from ase.collections import g2

    if name not in g2.names:
        raise InputError(
            f"{name!r} is neither an existing file nor a molecule name ASE knows (see ase.collections.g2.names); "
            "a periodic box of molecules is written NAME-box:N or NAME-box:N@DENSITY, e.g. water-box:32"
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
