"""Reading structures and refusing bad ones; configuration hashes."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.io import read, write

from mlpkit.data import check_structure, configuration_hash, molecule_from_name, read_structures
from mlpkit.errors import InputError


def test_molecule_names_and_files(tmp_path, shared_data):
    water = read_structures("H2O")[0]
    assert water.get_chemical_formula() == "H2O" and not water.pbc.any()
    # 5 Å vacuum on each side of the molecule
    extent = water.positions.max(0) - water.positions.min(0)
    assert np.allclose(np.diag(water.cell[:]), extent + 10.0)
    frames = read_structures(shared_data / "h2o-pbe-svp-500K-nve.extxyz")
    assert len(frames) == 300 and frames[0].get_potential_energy() < 0
    with pytest.raises(InputError, match="neither an existing file nor a molecule"):
        read_structures("Unobtainium")
    with pytest.raises(InputError, match="does not exist"):
        read_structures(tmp_path / "nope.extxyz")


def test_truncated_garbled_empty_files(tmp_path, shared_data):
    text = (shared_data / "h2o-pbe-svp-500K-nve.extxyz").read_text()
    truncated = tmp_path / "truncated.extxyz"
    truncated.write_text(text[: len(text) // 3 + 17])  # cut in the middle of a frame
    with pytest.raises(InputError, match=r"truncated\.extxyz"):
        read_structures(truncated)
    garbled = tmp_path / "garbled.extxyz"
    garbled.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match=r"garbled\.extxyz"):
        read_structures(garbled)
    nonsense = tmp_path / "nonsense.xyz"
    nonsense.write_text("3\ncomment\nO 0 0 zero\nH 1 0 0\n")
    with pytest.raises(InputError):
        read_structures(nonsense)
    empty = tmp_path / "empty.extxyz"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_structures(empty)
    with pytest.raises(InputError, match="directory"):
        read_structures(tmp_path)


def test_overlapping_and_nonfinite_atoms(tmp_path):
    atoms = Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [0.96, 0.1, 0]])
    with pytest.raises(InputError, match="on top of each other"):
        check_structure(atoms)
    path = tmp_path / "overlap.extxyz"
    write(path, atoms)
    with pytest.raises(InputError, match="frame 0"):
        read_structures(path)
    bad = Atoms("H2", positions=[[0, 0, 0], [np.nan, 0, 0]])
    with pytest.raises(InputError, match="non-finite"):
        check_structure(bad)
    # periodic images count: two atoms 0.2 Å apart through the boundary
    cell = Atoms("H2", positions=[[0.1, 0, 0], [9.9, 0, 0]], cell=[10, 10, 10], pbc=True)
    with pytest.raises(InputError):
        check_structure(cell)
    cell.pbc = False
    check_structure(cell)


def test_hash_invariances(tmp_path):
    water = molecule_from_name("H2O")
    h = configuration_hash(water)
    path = tmp_path / "w.extxyz"
    write(path, water)
    assert configuration_hash(read(path)) == h  # survives the 8-decimal text round trip
    moved = water.copy()
    moved.positions[1, 2] += 1e-4
    assert configuration_hash(moved) != h
    other_cell = water.copy()
    other_cell.cell[0, 0] += 1.0
    assert configuration_hash(other_cell) != h
    periodic = water.copy()
    periodic.pbc = True
    assert configuration_hash(periodic) != h
    negzero = Atoms("H", positions=[[-0.0, 0, 0]])
    assert configuration_hash(negzero) == configuration_hash(Atoms("H", positions=[[0.0, 0, 0]]))
