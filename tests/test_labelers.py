"""The labeler interface across methods: registry, specs, units, validation, EMT/tblite/ASE/GPAW."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from mlpkit.data import molecule_from_name
from mlpkit.errors import InputError, LabelFailure, MissingDependencyError, UnsupportedSpeciesError
from mlpkit.labelers import make_labeler
from mlpkit.labelers.base import Labeler

try:
    import gpaw  # noqa: F401

    HAVE_GPAW = True
except ImportError:
    HAVE_GPAW = False


def finite_difference_forces(labeler, atoms, components, h=1e-3):
    """Central differences -dE/dx (eV/Å) of the labeler's own energy for (atom, axis) pairs."""
    out = []
    for i, c in components:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, c] += h
        minus.positions[i, c] -= h
        out.append(-(labeler.label(plus).energy - labeler.label(minus).energy) / (2 * h))
    return np.array(out)


def test_registry_and_specs_round_trip():
    with pytest.raises(InputError, match="unknown method"):
        make_labeler("vasp2000")
    with pytest.raises(InputError, match="bad options"):
        make_labeler("emt", basis="def2-SVP")
    for name, kwargs in [
        ("emt", {}),
        ("gfn2", {"accuracy": 0.5}),
        ("pyscf", {"basis": "def2-TZVP", "spin": 2}),
        ("ase", {"calculator": "ase.calculators.emt:EMT", "level_of_theory": "emt-by-path"}),
    ]:
        lab = make_labeler(name, **kwargs)
        assert isinstance(lab, Labeler)
        again = make_labeler(lab.spec())
        assert type(again) is type(lab) and again.spec() == lab.spec() and again.method == lab.method
    assert make_labeler("pyscf").method == "pyscf:PBE/def2-SVP"
    assert make_labeler("pyscf", charge=1, spin=1, density_fit=True).method == "pyscf:PBE/def2-SVP[charge=1,spin=1,df]"
    assert make_labeler("gfn2").method == "tblite:GFN2-xTB"


def test_emt_and_ase_by_import_path_agree_with_direct_calls():
    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    cu.rattle(0.05, seed=1)
    direct = cu.copy()
    direct.calc = EMT()
    for lab in (make_labeler("emt"), make_labeler("ase", calculator="ase.calculators.emt.EMT")):
        label = lab.label(cu)
        assert label.energy == pytest.approx(direct.get_potential_energy(), abs=1e-12)
        assert np.allclose(label.forces, direct.get_forces(), atol=1e-12)
        assert label.stress.shape == (6,) and np.allclose(label.stress, direct.get_stress(), atol=1e-12)
        assert label.seconds >= 0
        assert np.sum(label.forces, axis=0) == pytest.approx(np.zeros(3), abs=1e-10)
    with pytest.raises(UnsupportedSpeciesError, match="Si"):
        make_labeler("emt").label(bulk("Si"))
    with pytest.raises(MissingDependencyError):
        make_labeler("ase", calculator="no_such_package.calc:Calc")
    with pytest.raises(InputError):
        make_labeler("ase", calculator="ase.calculators.emt:NoSuchClass")


def test_tblite_forces_match_finite_differences():
    lab = make_labeler("gfn2")
    water = molecule_from_name("H2O")
    water.positions[1] += [0.05, -0.03, 0.02]
    label = lab.label(water)
    from tblite.ase import TBLite

    direct = water.copy()
    direct.calc = TBLite(method="GFN2-xTB", verbosity=0)
    assert label.energy == pytest.approx(direct.get_potential_energy(), abs=1e-8)
    components = [(0, 0), (1, 1), (2, 2)]
    fd = finite_difference_forces(lab, water, components)
    assert np.allclose([label.forces[i, c] for i, c in components], fd, atol=1e-4)
    assert label.stress is None  # molecules have no stress


def test_non_finite_results_never_become_labels():
    class NaNLabeler(Labeler):
        name = "nan"

        @property
        def method(self):
            return "test:nan"

        def calculator(self):
            return EMT()

        def _compute(self, atoms):
            return float("nan"), np.zeros((len(atoms), 3)), None

    with pytest.raises(LabelFailure, match="non-finite energy"):
        NaNLabeler().label(molecule_from_name("H2O"))


def test_gpaw_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "gpaw", None)  # makes `import gpaw` raise ImportError
    with pytest.raises(MissingDependencyError, match="GPAW_CONFIG"):
        make_labeler("gpaw")


@pytest.mark.gpaw
@pytest.mark.skipif(not HAVE_GPAW, reason="GPAW is not installed (see docs/reference-methods.md)")
def test_gpaw_water_in_a_box():
    from gpaw import GPAW, PW

    lab = make_labeler("gpaw")
    assert lab.method == "gpaw:PBE/PW300"
    assert make_labeler(lab.spec()).method == lab.method
    water = molecule_from_name("H2O", vacuum=3.0)
    label = lab.label(water)
    direct = water.copy()
    direct.calc = GPAW(mode=PW(300), xc="PBE", txt=None)
    assert label.energy == pytest.approx(direct.get_potential_energy(), abs=1e-6)
    assert np.allclose(label.forces, direct.get_forces(), atol=1e-5)
    with pytest.raises(UnsupportedSpeciesError, match="Og"):
        lab.check(Atoms("Og", positions=[[3, 3, 3]], cell=[6, 6, 6]))
    with pytest.raises(InputError, match="cell"):
        lab.check(Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]]))
    assert make_labeler("gpaw", kpts=(2, 2, 2), ecut=400).method == "gpaw:PBE/PW400/k2x2x2"


@pytest.mark.gpaw
@pytest.mark.skipif(not HAVE_GPAW, reason="GPAW is not installed (see docs/reference-methods.md)")
def test_gpaw_periodic_cell_with_k_points_and_stress():
    """A crystal: k-points, smearing and stress reach GPAW; one labeler reused on a cell of another shape gives what
    a fresh calculator gives (GPAW re-initialises on a cell change). ~2 s on one core (2-atom Si, 200 eV, 2x2x2)."""
    from gpaw import GPAW, PW

    lab = make_labeler("gpaw", ecut=200, kpts=(2, 2, 2), occupations_width=0.05)
    assert lab.method == "gpaw:PBE/PW200/k2x2x2"
    si = bulk("Si", "diamond", a=5.47)
    si.rattle(0.05, seed=0)
    first = lab.label(si)
    assert first.stress is not None and first.stress.shape == (6,)
    assert np.abs(first.stress[3:]).max() > 1e-3  # a rattled cell carries shear stress
    strained = si.copy()
    strained.set_cell(si.cell * 1.03, scale_atoms=True)
    label = lab.label(strained)
    direct = strained.copy()
    direct.calc = GPAW(
        mode=PW(200), xc="PBE", kpts=(2, 2, 2), occupations={"name": "fermi-dirac", "width": 0.05}, txt=None
    )
    assert label.energy == pytest.approx(direct.get_potential_energy(), abs=1e-5)
    assert np.allclose(label.forces, direct.get_forces(), atol=5e-4)  # SCF started from another guess
    assert np.allclose(label.stress, direct.get_stress(), atol=1e-5)


@pytest.mark.gpaw
@pytest.mark.slow
@pytest.mark.skipif(not HAVE_GPAW, reason="GPAW is not installed (see docs/reference-methods.md)")
def test_gpaw_silicon_stress_matches_finite_differences():
    from ase.calculators.fd import calculate_numerical_stress

    si = bulk("Si", "diamond", a=5.43)
    si.rattle(0.02, seed=0)
    lab = make_labeler("gpaw", kpts=(2, 2, 2))
    label = lab.label(si)
    work = si.copy()
    work.calc = lab.calculator()
    numerical = calculate_numerical_stress(work, eps=1e-5)
    # Shear components (0.03-0.05 eV/Å³ here) agree to ~1e-6. The diagonal differs by the Pulay stress
    # (GPAW's analytic stress is at constant cut-off, while finite strains change the plane-wave set):
    # ~0.011 eV/Å³, nearly isotropic, at 300 eV for Si.
    assert np.allclose(label.stress[3:], numerical[3:], atol=2e-5)
    assert np.abs(label.stress[:3] - numerical[:3]).max() < 0.02


def test_file_based_ase_calculators_get_one_directory_per_process(tmp_path):
    """Two workers running VASP in one directory would overwrite each other's INCAR/OUTCAR."""
    import os

    labeler = make_labeler(
        "ase", calculator="ase.calculators.vasp:Vasp", parameters={"directory": str(tmp_path / "vasp")}
    )
    directory = labeler.calculator().directory
    assert directory.startswith(str(tmp_path / "vasp"))
    assert directory.endswith(f"-{os.getpid()}")
    # in-memory calculators are left alone (no stray directories)
    assert make_labeler("ase", calculator="ase.calculators.emt:EMT").calculator().directory == "."
