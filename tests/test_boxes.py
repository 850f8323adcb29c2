"""Periodic boxes of molecules (mlpkit.data.boxes), the NAME-box:N[@DENSITY] spec wherever a structure is accepted,
and periodic cell files (POSCAR, CIF) read with their lattice."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.geometry import get_distances

from mlpkit.data import molecular_box, parse_box_spec, read_structures
from mlpkit.data.boxes import LIQUID_DENSITY, box_length, density_of
from mlpkit.errors import InputError


def _closest_intermolecular(atoms: Atoms) -> float:
    """Å: the shortest minimum-image distance between atoms of different molecules (ASE's own, not vesin)."""
    _, d = get_distances(atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    mol = atoms.arrays["mol-id"]
    return float(d[mol[:, None] != mol[None, :]].min())


def _intact(atoms: Atoms, template: Atoms) -> bool:
    """Every molecule keeps the template's internal distances (rigid placement, no atom torn across the cell)."""
    ref = np.sort(template.get_all_distances().ravel())
    mol = atoms.arrays["mol-id"]
    for m in np.unique(mol):
        sub = atoms[mol == m]
        got = np.sort(sub.get_all_distances(mic=True).ravel())
        if not np.allclose(got, ref, atol=1e-8):
            return False
    return True


def test_water_box_32_has_the_density_and_no_overlap():
    atoms = read_structures("water-box:32")[0]
    assert len(atoms) == 96 and atoms.get_chemical_formula() == "H64O32"
    assert atoms.pbc.all() and np.allclose(atoms.cell.angles(), 90)
    # 32 x 18.015 amu at 1.0 g/cm³: (32 x 18.015 / 0.602214076)^(1/3) = 9.8555 Å
    assert atoms.cell.lengths() == pytest.approx([9.8555] * 3, abs=1e-4)
    assert density_of(atoms) == pytest.approx(1.0, rel=1e-12)
    assert _closest_intermolecular(atoms) >= 1.6
    assert _intact(atoms, molecule("H2O"))
    frac = atoms.get_scaled_positions(wrap=False)
    assert np.all((frac >= 0) & (frac < 1))  # wrapped into the cell


@pytest.mark.parametrize("n", [1, 7, 20, 45])
def test_any_number_of_molecules(n):
    """Not only k³: lattice sites are drawn at random when the lattice has more than n."""
    atoms = molecular_box("H2O", n, density=1.0, seed=3)
    assert len(atoms) == 3 * n and atoms.info["n_molecules"] == n
    assert density_of(atoms) == pytest.approx(1.0)
    if n > 1:
        assert _closest_intermolecular(atoms) >= 1.6


def test_seeded():
    a, b, c = (molecular_box("CH3OH", 12, density=0.79, seed=s) for s in (5, 5, 6))
    assert np.array_equal(a.positions, b.positions)
    assert not np.allclose(a.positions, c.positions)


def test_an_anisotropic_molecule_needs_the_rigid_body_relaxation():
    """100 DMSO at 1.1 g/cm³ do not fit by random reorientation alone; turning and pushing whole molecules down the
    overlap penalty finds room."""
    template = molecule("C2H6SO")
    with pytest.raises(InputError, match="lower the density"):
        molecular_box(template, 100, density=1.1, seed=0, max_rounds=400, reorient_rounds=400)
    atoms = molecular_box(template, 100, density=LIQUID_DENSITY["C2H6SO"], seed=0, max_rounds=400)
    assert _closest_intermolecular(atoms) >= 1.6
    assert _intact(atoms, template)
    assert density_of(atoms) == pytest.approx(1.100)


def test_given_cell_and_any_atoms_object():
    mol = Atoms("HF", positions=[[0, 0, 0], [0, 0, 0.92]])
    atoms = molecular_box(mol, 10, cell=[8.0, 9.0, 12.0], min_distance=2.0, seed=1)
    assert np.allclose(atoms.cell.lengths(), [8, 9, 12])
    assert _closest_intermolecular(atoms) >= 2.0
    assert atoms.info["density"] == pytest.approx(10 * 20.006 / (864 * 0.602214076), rel=1e-3)


def test_impossible_boxes_are_refused():
    with pytest.raises(InputError, match="lower the density"):
        molecular_box("H2O", 27, density=3.0, seed=0, max_rounds=40)
    with pytest.raises(InputError, match="lower the density"):  # benzene touches its own periodic image
        molecular_box("C6H6", 1, cell=[3.5, 3.5, 3.5], max_rounds=40)
    with pytest.raises(InputError, match="exactly one"):
        molecular_box("H2O", 4)
    with pytest.raises(InputError, match="molecule name"):
        molecular_box("XYZ", 4, density=1.0)


def test_box_specs_parse_with_known_densities_and_clear_errors():
    assert parse_box_spec("water-box:32") == ("H2O", 32, 1.0)
    assert parse_box_spec("CH3OH-box:20@0.79") == ("CH3OH", 20, 0.79)
    assert parse_box_spec("CH3CH2OH-box:10") == ("CH3CH2OH", 10, LIQUID_DENSITY["CH3CH2OH"])
    for bad, why in [
        ("CH4-box:10", "no known liquid density"),
        ("H2O-box:0", "at least one"),
        ("H2O-box:8@-1", "positive"),
        ("H2O-box:8@dense", "not a number"),
        ("Unobtainium-box:8", "not an ASE molecule"),
    ]:
        with pytest.raises(InputError, match=why):
            parse_box_spec(bad)
    # the density written with a dot is a spec, not a file with the suffix ".79"
    (atoms,) = read_structures("CH3OH-box:6@0.79", seed=2)
    assert len(atoms) == 36 and density_of(atoms) == pytest.approx(0.79)
    assert atoms.info["source"] == "CH3OH-box:6@0.79"


def test_box_length_matches_hand_arithmetic():
    # 1000 waters at 0.997 g/cm³: 18015 amu / (0.997 x 0.602214076 amu/Å³) = 30,004 Å³ → 31.07 Å
    assert box_length(molecule("H2O"), 1000, 0.997) == pytest.approx(31.074, abs=1e-3)


@pytest.mark.parametrize("fmt, name", [("vasp", "POSCAR"), ("cif", "box.cif")])
def test_periodic_cell_files_keep_their_lattice(tmp_path, fmt, name):
    """A periodic cell (here a triclinic one) read from POSCAR or CIF: same cell, pbc, atoms, positions."""
    box = molecular_box("H2O", 8, cell=[[7.0, 0, 0], [1.0, 7.5, 0], [0.5, 0.3, 8.0]], seed=4)
    path = tmp_path / name
    box.write(path, format=fmt)
    (atoms,) = read_structures(path)
    assert atoms.pbc.all()
    assert np.allclose(atoms.cell.cellpar(), box.cell.cellpar(), atol=1e-4)
    assert sorted(atoms.numbers) == sorted(box.numbers)
    # positions agree as a set (formats reorder by species); compare fractional, wrapped coordinates
    frac = lambda a: np.sort(np.round(a.get_scaled_positions() % 1.0, 4), axis=0)  # noqa: E731
    assert np.allclose(frac(atoms), frac(box), atol=2e-4)


def test_config_and_init_accept_box_specs(tmp_path):
    from typer.testing import CliRunner

    from mlpkit.cli import _register, app
    from mlpkit.config import ProjectConfig
    from mlpkit.config.system import SystemSection

    assert SystemSection(structure="CH3OH-box:20@0.79").structure == "CH3OH-box:20@0.79"
    with pytest.raises(ValueError, match="no known liquid density"):
        SystemSection(structure="CH4-box:20")
    _register()
    runner = CliRunner()
    res = runner.invoke(app, ["init", str(tmp_path / "liquid"), "--structure", "water-box:32", "--method", "gfn2"])
    assert res.exit_code == 0, res.output
    cfg = ProjectConfig.from_yaml(tmp_path / "liquid" / "mlpkit.yaml")
    assert cfg.system.structure == "water-box:32"
    res = runner.invoke(app, ["check", str(tmp_path / "liquid" / "mlpkit.yaml")])
    assert res.exit_code == 0 and "OK" in res.output, res.output


def test_active_learning_config_keeps_a_box_spec(tmp_path):
    """The learn file's path resolution must not turn CH3OH-box:20@0.79 (suffix '.79') into a file path."""
    from mlpkit.config.active_learning import ActiveLearningConfig

    cfg = ActiveLearningConfig(structure="CH3OH-box:20@0.79", reference={"method": "emt"}).resolve_paths(tmp_path)
    assert cfg.structure == "CH3OH-box:20@0.79"
