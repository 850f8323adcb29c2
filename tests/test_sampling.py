"""Sampling: MD snapshots (NVE and Langevin), rattling, normal-mode sampling. Cheap calculators (GFN2, EMT)."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.optimize import BFGS

from mlpkit.data import molecule_from_name
from mlpkit.errors import InputError
from mlpkit.labelers import make_labeler
from mlpkit.sampling import harmonic_modes, md_snapshots, normal_mode_sampling, rattle


@pytest.fixture(scope="module")
def gfn2():
    return make_labeler("gfn2")


@pytest.fixture(scope="module")
def relaxed_water(gfn2):
    water = molecule_from_name("H2O")
    water.calc = gfn2.calculator()
    BFGS(water, logfile=None).run(fmax=1e-4)
    water.calc = None
    return water


def total_energy(frames, calc):
    out = []
    for f in frames:
        a = f.copy()
        a.calc = calc
        out.append(a.get_potential_energy() + a.get_kinetic_energy())
    return np.array(out)


def test_md_nve_snapshots(gfn2):
    water = molecule_from_name("H2O")
    start = water.positions.copy()
    frames = md_snapshots(water, gfn2, temperature=500, steps=100, every=5, seed=4)
    assert np.array_equal(water.positions, start) and water.calc is None  # input untouched
    assert len(frames) == 20
    assert [f.info["step"] for f in frames] == list(range(5, 101, 5))
    assert frames[0].info["source"] == "md-500K-nve" and frames[0].info["temperature"] == 500.0
    assert all(f.calc is None for f in frames)  # no MD-level energies that could pass for labels
    # centre-of-mass momentum and rotation were removed at the start and stay (nearly) zero
    for f in frames:
        assert np.abs(f.get_momenta().sum(axis=0)).max() < 1e-8
        r = f.positions - f.get_center_of_mass()
        assert np.abs(np.cross(r, f.get_momenta()).sum(axis=0)).max() < 1e-3
    # velocity Verlet conserves the total energy up to O(dt²) fluctuations: halving the step quarters them
    etot = total_energy(frames, gfn2.calculator())
    assert np.ptp(etot) < 0.03  # eV, against ~0.2 eV of vibrational energy
    fine = md_snapshots(water, gfn2, temperature=500, steps=200, every=10, timestep=0.5, seed=4)
    assert np.ptp(total_energy(fine, gfn2.calculator())) < 0.4 * np.ptp(etot)


def test_md_is_seeded():
    """Same seed, same trajectory (bit for bit with a deterministic calculator); another seed, another one."""
    from ase.cluster import Octahedron

    cluster = Octahedron("Cu", 3)  # 19 atoms, non-periodic: rotation removal applies
    cluster.center(vacuum=5.0)
    for thermostat in ("nve", "langevin"):
        a = md_snapshots(cluster, EMT(), temperature=300, steps=40, every=20, thermostat=thermostat, seed=4)
        b = md_snapshots(cluster, EMT(), temperature=300, steps=40, every=20, thermostat=thermostat, seed=4)
        c = md_snapshots(cluster, EMT(), temperature=300, steps=40, every=20, thermostat=thermostat, seed=5)
        assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b, strict=True))
        assert not np.allclose(a[-1].positions, c[-1].positions)


def test_md_initial_temperature_is_maxwell_boltzmann():
    """Averaged over seeds, the starting kinetic energy of a periodic EMT crystal is 3/2 N k_B T (COM removed)."""
    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3)  # 108 atoms
    temps = []
    for seed in range(5):
        frames = md_snapshots(cu, EMT(), temperature=300, steps=1, every=1, seed=seed)
        temps.append(frames[0].get_temperature())
    # one 1-fs step barely changes the kinetic energy of a perfect crystal at rest
    assert np.mean(temps) == pytest.approx(300, rel=0.1)


def test_langevin_holds_the_temperature():
    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)  # 32 atoms
    frames = md_snapshots(
        cu, "emt", temperature=600, steps=800, every=5, thermostat="langevin", timestep=2.0, friction=0.05, seed=1
    )
    assert frames[0].info["source"] == "md-600K-langevin"
    temps = np.array([f.get_temperature() for f in frames[40:]])  # after 400 fs (20 friction times)
    assert temps.mean() == pytest.approx(600, rel=0.12)
    with pytest.raises(InputError):
        md_snapshots(cu, "emt", temperature=600, steps=10, every=1, thermostat="nose")
    with pytest.raises(InputError):
        md_snapshots(cu, "emt", temperature=600, steps=10, every=20)


def test_rattle():
    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3)
    frames = rattle(cu, 20, stdev=0.05, seed=2)
    assert len(frames) == 20 and frames[0].info["source"] == "rattle"
    disp = np.array([f.positions - cu.positions for f in frames])
    assert disp.std() == pytest.approx(0.05, rel=0.05)
    assert abs(disp.mean()) < 0.005
    assert np.array_equal(rattle(cu, 20, stdev=0.05, seed=2)[7].positions, frames[7].positions)
    assert not np.array_equal(rattle(cu, 20, stdev=0.05, seed=3)[7].positions, frames[7].positions)
    with pytest.raises(InputError):
        rattle(cu, 5, stdev=0.0)


def test_harmonic_modes_match_ase_vibrations(tmp_path, relaxed_water, gfn2):
    from ase.vibrations import Vibrations

    modes = harmonic_modes(relaxed_water, gfn2)
    assert len(modes.frequencies_cm) == 3 and len(modes.skipped_cm) == 0
    atoms = relaxed_water.copy()
    atoms.calc = gfn2.calculator()
    vib = Vibrations(atoms, name=str(tmp_path / "vib"), delta=0.01, nfree=2)
    vib.run()
    ase_cm = np.sort(np.real(vib.get_frequencies()))[-3:]
    assert np.allclose(modes.frequencies_cm, ase_cm, atol=1.0)  # cm⁻¹
    # water: a bend near 1500-1600 and two stretches near 3600-3700 cm⁻¹ at this level
    assert 1400 < modes.frequencies_cm[0] < 1700 and 3400 < modes.frequencies_cm[1] < 3900


def test_normal_mode_sampling_is_boltzmann(relaxed_water, gfn2):
    """Each mode's mean potential energy ω²q²/2 is k_B T / 2 (equipartition), to within sampling noise."""
    temperature = 400.0
    frames = normal_mode_sampling(relaxed_water, gfn2, 2000, temperature, seed=0)
    assert len(frames) == 2000 and frames[0].info["source"] == "normal-modes-400K"
    modes = harmonic_modes(relaxed_water, gfn2)
    sqm = np.sqrt(modes.masses)[:, None]
    disp = np.array([f.positions - relaxed_water.positions for f in frames]) * sqm  # mass-weighted
    q = np.einsum("sij,kij->sk", disp, modes.modes)
    energy = 0.5 * modes.omega2 * q**2  # eV per mode and sample
    assert energy.mean(axis=0) == pytest.approx([0.5 * units.kB * temperature] * 3, rel=0.1)
    # the displacements never move the centre of mass (translations were projected out)
    com_shift = np.einsum("i,sij->sj", modes.masses, disp / sqm) / modes.masses.sum()
    assert np.abs(com_shift).max() < 1e-10
    # seeded (to round-off: a threaded calculator's Hessian is not bitwise reproducible)
    again = normal_mode_sampling(relaxed_water, gfn2, 3, temperature, seed=0)
    assert np.allclose(again[2].positions, frames[2].positions, atol=1e-6)
