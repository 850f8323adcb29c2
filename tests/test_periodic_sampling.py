"""Periodic sampling: NPT (isotropic Langevin-Hoover barostat) in md_snapshots and run_md, and GFN2-xTB stress labels
of a liquid-water box (finite-difference check, stored in the dataset)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from mlpkit.data import Dataset, molecular_box
from mlpkit.data.boxes import density_of
from mlpkit.errors import InputError
from mlpkit.sampling import md_snapshots
from mlpkit.sampling.md import BAR


def _copper():
    return bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)  # 32 atoms


def _npt_run(pressure_bar: float, steps: int = 300):
    """Volume (Å³) and instantaneous pressure (bar, virial + kinetic) of every step of an NPT run of EMT copper."""
    from ase import units

    from mlpkit.sampling.md import make_integrator

    atoms = _copper()
    atoms.calc = EMT()
    rng = np.random.default_rng(0)
    from ase.md.velocitydistribution import thermalize_momenta

    thermalize_momenta(atoms, 300, rng=rng)
    dyn = make_integrator(
        atoms, ensemble="npt", timestep=4.0, temperature=300, pressure=pressure_bar, barostat_time=400.0, rng=rng
    )
    volumes, pressures, cells = [], [], []

    def record():
        volumes.append(atoms.get_volume())
        pressures.append(-atoms.get_stress(include_ideal_gas=True)[:3].mean() / units.bar)
        cells.append(atoms.cell.cellpar())

    dyn.attach(record, interval=1)
    dyn.run(steps)
    return np.array(volumes), np.array(pressures), np.array(cells)


def test_npt_holds_the_pressure_and_compresses_by_the_bulk_modulus():
    """EMT copper at 300 K: at 50 kbar (5 GPa) the mean volume shrinks by about P/B (B ≈ 134 GPa for EMT Cu: 3.7%),
    the mean instantaneous pressure is the target within its noise, and the cell stays cubic (isotropic)."""
    v0, p0, cells0 = _npt_run(1.0)
    v5, p5, cells5 = _npt_run(50_000.0)
    burn = 100
    shrink = 1 - v5[burn:].mean() / v0[burn:].mean()
    assert 0.025 < shrink < 0.05, shrink
    for p, target in ((p0, 1.0), (p5, 50_000.0)):
        # the pressure of a 32-atom cell fluctuates by ~10 kbar step to step; correlated over ~20 steps
        err = p[burn:].std() / np.sqrt(len(p[burn:]) / 20)
        assert abs(p[burn:].mean() - target) < 4 * err, (p[burn:].mean(), target, err)
    for cells in (cells0, cells5):
        assert np.allclose(cells[:, :3], cells[:, :1], rtol=1e-10) and np.allclose(cells[:, 3:], 90)
    assert v0.std() > 0  # the volume does fluctuate


def test_npt_snapshots_carry_their_density_and_are_seeded():
    box = _copper()
    kw = dict(temperature=600.0, steps=40, every=10, thermostat="npt", timestep=4.0, pressure=20_000.0, seed=3)
    frames = md_snapshots(box, EMT(), **kw)
    again = md_snapshots(box, EMT(), **kw)
    assert len(frames) == 4
    densities = [f.info["density"] for f in frames]
    assert len(set(densities)) == 4
    assert densities == pytest.approx([density_of(f) for f in frames])
    assert frames[0].info["pressure"] == 20_000.0 and frames[0].info["source"] == "md-600K-npt-20000bar"
    assert [f.info["density"] for f in again] == densities  # same seed, same trajectory
    assert np.allclose(box.cell.cellpar(), _copper().cell.cellpar())  # the input is not changed


def test_npt_needs_a_periodic_cell_and_run_md_records_density():
    from ase.build import molecule

    from mlpkit.md.dynamics import run_md

    with pytest.raises(InputError, match="periodic"):
        md_snapshots(molecule("H2O"), EMT(), temperature=300, steps=2, every=1, thermostat="npt")
    res = run_md(_copper(), EMT(), ensemble="npt", temperature=300, timestep=4.0, steps=20, interval=5, pressure=1e4)
    assert res.steps_done == 20 and res.stopped_because == ""
    assert len({round(f.info["density"], 8) for f in res.frames}) == len(res.frames) == 4
    assert res.temperature_summary() is not None
    with pytest.raises(InputError, match="ensemble"):
        run_md(_copper(), EMT(), ensemble="nph", temperature=300, steps=1)


def test_anisotropic_npt_lets_the_cell_shape_change():
    from ase.md.velocitydistribution import thermalize_momenta

    from mlpkit.sampling.md import make_integrator

    atoms = _copper()
    atoms.calc = EMT()
    rng = np.random.default_rng(1)
    thermalize_momenta(atoms, 300, rng=rng)
    dyn = make_integrator(atoms, ensemble="npt", timestep=4.0, temperature=300, isotropic=False, rng=rng)
    dyn.run(30)
    lengths = atoms.cell.lengths()
    assert np.ptp(lengths) > 1e-4 or np.abs(atoms.cell.angles() - 90).max() > 1e-3


@pytest.fixture(scope="module")
def water8():
    return molecular_box("H2O", 8, density=1.0, seed=0)


def test_gfn2_stress_of_a_water_box_is_the_strain_derivative(water8):
    """tblite's stress on a periodic 8-molecule box equals (1/V) dE/dε by central differences (isotropic and xx)."""
    pytest.importorskip("tblite")
    from mlpkit.labelers import make_labeler

    labeler = make_labeler("gfn2")
    label = labeler.label(water8)
    assert label.stress is not None and label.stress.shape == (6,)
    volume, eps = water8.get_volume(), 2e-4

    def energy(strain: np.ndarray) -> float:
        a = water8.copy()
        a.set_cell(water8.cell[:] @ (np.eye(3) + strain), scale_atoms=True)
        return labeler.label(a).energy

    iso = (energy(eps * np.eye(3)) - energy(-eps * np.eye(3))) / (2 * eps) / volume
    assert iso == pytest.approx(label.stress[:3].sum(), abs=2e-5)  # eV/Å³; 1e-5 eV/Å³ = 16 bar
    xx = np.diag([eps, 0, 0])
    assert (energy(xx) - energy(-xx)) / (2 * eps) / volume == pytest.approx(label.stress[0], abs=2e-5)


def test_gfn2_stress_labels_are_stored_and_npt_runs_on_the_water_box(tmp_path, water8):
    pytest.importorskip("tblite")
    from mlpkit.labelers import make_labeler

    labeler = make_labeler("gfn2")
    frames = md_snapshots(
        water8, labeler, temperature=300, steps=4, every=2, thermostat="npt", timestep=0.5, pressure=1.0, seed=1
    )
    assert len(frames) == 2 and frames[0].info["density"] != frames[1].info["density"]
    ds = Dataset(tmp_path / "d.db")
    ids = ds.add(frames, method=labeler.method, source="npt").ids
    labels = {i: labeler.label(ds.get_atoms(i)) for i in ids}
    for i, lab in labels.items():
        ds.record_label(i, lab)
    stored = ds.to_atoms(method=labeler.method)
    assert len(stored) == 2
    for atoms, i in zip(stored, ids, strict=True):
        assert np.allclose(atoms.get_stress(voigt=True), labels[i].stress)
        assert np.allclose(atoms.cell[:], ds.get_atoms(i).cell[:])
    # pressure from the stress, for the record: a packed box far from equilibrium, finite and modest (< 50 kbar)
    assert np.all(np.abs(-labels[ids[0]].stress[:3].mean() / BAR) < 5e4)


def test_cli_samples_npt_from_a_box_spec(tmp_path):
    from ase.io import read
    from typer.testing import CliRunner

    from mlpkit.cli import _register, app

    _register()
    out = tmp_path / "npt.extxyz"
    args = ["sample", "md", "-s", "water-box:8", "--calc", "emt", "--thermostat", "npt", "--pressure", "1000"]
    res = CliRunner().invoke(app, [*args, "--steps", "4", "--every", "2", "--timestep", "0.5", "-o", str(out)])
    assert res.exit_code == 0, res.output
    frames = read(out, ":")
    assert len(frames) == 2 and frames[0].pbc.all() and len(frames[0]) == 24
    assert frames[0].info["source"] == "md-500K-npt-1000bar" and frames[0].info["density"] > 0


def test_equilibrate_box_removes_close_contacts_then_thermalises():
    from mlpkit.sampling import equilibrate_box

    hot = _copper()
    hot.rattle(0.2, seed=0)  # close contacts: forces of several eV/Å
    probe = hot.copy()
    probe.calc = EMT()
    assert np.abs(probe.get_forces()).max() > 2.0
    out = equilibrate_box(hot, EMT(), temperature=300, relax_steps=200, fmax=0.3, nvt_steps=10, timestep=2.0)
    check = out.copy()
    check.calc = EMT()
    # the NVT steps move the atoms again, but from a relaxed start: forces stay of thermal size
    assert np.abs(check.get_forces()).max() < 1.5
    assert out.get_momenta().any() and "FIRE" in out.info["equilibration"]
    assert np.allclose(out.cell[:], hot.cell[:])  # cell fixed
    relaxed_only = equilibrate_box(hot, EMT(), temperature=300, relax_steps=200, fmax=0.3)
    relaxed_only.calc = EMT()
    assert np.linalg.norm(relaxed_only.get_forces(), axis=1).max() < 0.3
    assert not relaxed_only.get_momenta().any()
    assert np.allclose(hot.positions, probe.positions)  # the input was not changed
