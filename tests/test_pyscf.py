"""PySCF reference labels checked against independent PySCF calls, finite differences and the committed data."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.units import Bohr, Hartree

from mlpkit.data import molecule_from_name
from mlpkit.errors import InputError, LabelFailure, UnsupportedSpeciesError
from mlpkit.labelers import make_labeler
from mlpkit.labelers.pyscf import PySCFLabeler, clear_guess_cache

# One OpenMP thread: robust when the test machine is busy (OpenMP barriers collapse under oversubscription).
THREADS = 1

# A fixed, slightly distorted water geometry (Å), independent of any file.
WATER = Atoms("OHH", positions=[[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.05, -0.7800, -0.4500]])


def pyscf_labeler(**kwargs) -> PySCFLabeler:
    return make_labeler("pyscf", threads=THREADS, **kwargs)


def direct_pyscf(atoms, xc="PBE", basis="def2-SVP", spin=0):
    """Energy (Hartree) and gradient (Hartree/Bohr) from plain PySCF calls, written out independently."""
    from pyscf import dft, gto, lib

    lib.num_threads(THREADS)
    mol = gto.M(
        atom=[(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)],
        basis=basis,
        unit="Angstrom",
        spin=spin,
        verbose=0,
    )
    mf = dft.UKS(mol) if spin else dft.RKS(mol)
    mf.xc = xc
    mf.conv_tol = 1e-10
    energy = mf.kernel()
    assert mf.converged
    return energy, mf.nuc_grad_method().kernel()


def test_water_energy_and_forces_match_direct_pyscf():
    clear_guess_cache()
    label = pyscf_labeler().label(WATER)
    energy, gradient = direct_pyscf(WATER)
    assert label.energy == pytest.approx(energy * Hartree, abs=1e-6)  # eV
    assert np.allclose(label.forces, -gradient * Hartree / Bohr, atol=1e-5)  # eV/Å
    assert label.stress is None
    # Newton's third law for an isolated molecule
    assert np.abs(label.forces.sum(axis=0)).max() < 1e-3


def test_small_basis_other_functional_matches_direct_pyscf():
    label = pyscf_labeler(xc="LDA", basis="sto-3g").label(WATER)
    energy, gradient = direct_pyscf(WATER, xc="LDA", basis="sto-3g")
    assert label.energy == pytest.approx(energy * Hartree, abs=1e-6)
    assert np.allclose(label.forces, -gradient * Hartree / Bohr, atol=1e-5)


def test_reproduces_the_committed_reference_data(water_frames):
    """tests/data was labelled by this labeller (PBE/def2-SVP, fresh SCF guess per frame): the same numbers again.

    A change of units, defaults or PySCF settings shows here. (A reused density as the SCF guess converges to
    forces ~2e-5 eV/Å away at conv_tol 1e-10; test_guess_reuse_gives_the_same_answer bounds that.)
    """
    lab = pyscf_labeler(reuse_guess=False)
    for ref in water_frames[100:102]:
        label = lab.label(ref)
        assert label.energy == pytest.approx(ref.get_potential_energy(), abs=1e-7)
        assert np.allclose(label.forces, ref.get_forces(), atol=1e-6)


def test_forces_are_minus_the_gradient_of_the_labelers_energy():
    lab = pyscf_labeler(basis="sto-3g")  # the check is about consistency, not the basis
    atoms = WATER.copy()
    label = lab.label(atoms)
    h = 1e-3
    for i, c in [(0, 2), (1, 1), (2, 0)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, c] += h
        minus.positions[i, c] -= h
        fd = -(lab.label(plus).energy - lab.label(minus).energy) / (2 * h)
        # without the grid response the analytic force misses the grid's motion: ~1e-4 eV/Å (def2-SVP),
        # up to ~4e-4 eV/Å here; a unit or sign error would be off by > 1 eV/Å
        assert label.forces[i, c] == pytest.approx(fd, abs=1e-3)
    exact = pyscf_labeler(basis="sto-3g", grid_response=True)
    h = 4e-4  # the central-difference error ~h²/6 d³E/dx³ must stay well below the tolerance
    plus, minus = atoms.copy(), atoms.copy()
    plus.positions[1, 1] += h
    minus.positions[1, 1] -= h
    fd = -(exact.label(plus).energy - exact.label(minus).energy) / (2 * h)
    assert exact.label(atoms).forces[1, 1] == pytest.approx(fd, abs=2e-5)


def test_guess_reuse_gives_the_same_answer(water_frames):
    clear_guess_cache()
    reuse = pyscf_labeler(basis="sto-3g")
    fresh = pyscf_labeler(basis="sto-3g", reuse_guess=False)
    for atoms in water_frames[:2]:
        a, b = reuse.label(atoms), fresh.label(atoms)
        assert a.energy == pytest.approx(b.energy, abs=1e-7)
        assert np.allclose(a.forces, b.forces, atol=2e-5)
    from mlpkit.labelers import pyscf as module

    assert len(module._GUESS_CACHE) == 1  # one molecule, one method


def test_open_shell_uses_uks():
    oh = Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.98]])
    with pytest.raises(InputError, match="spin"):
        pyscf_labeler(basis="sto-3g").check(oh)  # 9 electrons cannot be a singlet
    label = pyscf_labeler(basis="sto-3g", spin=1).label(oh)
    energy, gradient = direct_pyscf(oh, basis="sto-3g", spin=1)
    assert label.energy == pytest.approx(energy * Hartree, abs=1e-6)
    assert np.allclose(label.forces, -gradient * Hartree / Bohr, atol=1e-5)


def test_scf_failure_is_a_label_failure_with_the_reason():
    lab = pyscf_labeler(basis="sto-3g", max_cycle=1, reuse_guess=False)
    with pytest.raises(LabelFailure) as info:
        lab.label(WATER)
    text = str(info.value)
    assert "SCF did not converge" in text
    for step in ("DIIS", "damping", "Newton"):
        assert step in text


def test_bad_input_refused_before_any_work():
    lab = pyscf_labeler()
    periodic = molecule_from_name("H2O")
    periodic.pbc = True
    with pytest.raises(InputError, match="gpaw"):
        lab.check(periodic)
    with pytest.raises(UnsupportedSpeciesError, match="Og"):
        lab.check(Atoms("OgH", positions=[[0, 0, 0], [0, 0, 2.0]]))
    with pytest.raises(InputError, match="functional"):
        PySCFLabeler(xc="NOT-A-FUNCTIONAL")
    with pytest.raises(InputError):
        PySCFLabeler(spin=-1)


def test_ase_calculator_of_the_same_method():
    lab = pyscf_labeler(basis="sto-3g")
    atoms = WATER.copy()
    atoms.calc = lab.calculator()
    label = lab.label(WATER)
    assert atoms.get_potential_energy() == pytest.approx(label.energy, abs=1e-7)
    assert np.allclose(atoms.get_forces(), label.forces, atol=1e-5)
