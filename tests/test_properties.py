"""MD properties against systems whose answer is known: a harmonic diatomic, an FCC lattice, a random walk."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.md.verlet import VelocityVerlet

from mlpkit.errors import InputError
from mlpkit.md import properties as P


class Spring(Calculator):
    """E = k/2 (r - r0)² between atoms 0 and 1: an exactly harmonic diatomic."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, k: float, r0: float):
        super().__init__()
        self.k, self.r0 = k, r0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.positions[1] - self.atoms.positions[0]
        r = np.linalg.norm(d)
        f0 = self.k * (r - self.r0) * d / r  # -dE/dx0
        self.results = {"energy": 0.5 * self.k * (r - self.r0) ** 2, "forces": np.array([f0, -f0])}


def expected_wavenumber(k: float, atoms: Atoms) -> float:
    m1, m2 = atoms.get_masses()
    mu = m1 * m2 / (m1 + m2)
    omega_per_fs = np.sqrt(k / mu) * units.fs  # sqrt(eV/Å²/amu) is 1/(ASE time)
    return omega_per_fs / (2 * np.pi) / P.C_CM_PER_FS


def diatomic(k=110.0, r0=1.13):
    atoms = Atoms("CO", positions=[[0, 0, 0], [0, 0, r0 + 0.04]])
    atoms.calc = Spring(k, r0)
    return atoms


def test_spectrum_peak_of_harmonic_oscillator():
    atoms = diatomic()
    expected = expected_wavenumber(110.0, atoms)
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    frames = []
    for _ in range(1500):
        dyn.run(1)
        frames.append(atoms.copy())
        frames[-1].set_velocities(atoms.get_velocities())
    spec = P.vibrational_spectrum(frames, dt=0.5)
    assert len(spec.peaks) >= 1
    main = spec.peaks[int(np.argmax(np.interp(spec.peaks, spec.frequencies, spec.intensity)))]
    assert abs(main - expected) < 0.01 * expected, (main, expected)
    assert spec.nyquist > 30000
    assert spec.vacf[0] == pytest.approx(1.0)


def test_harmonic_frequencies_of_spring():
    atoms = diatomic()
    atoms.positions[1, 2] = 1.13  # at the minimum
    freqs = P.harmonic_frequencies(atoms, Spring(110.0, 1.13))
    assert freqs.shape == (1,)  # 6 - 5 (linear molecule) = 1 mode
    assert freqs[0] == pytest.approx(expected_wavenumber(110.0, atoms), rel=1e-4)


def test_spectrum_needs_velocities():
    frames = [Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]]) for _ in range(10)]
    with pytest.raises(InputError, match="velocities"):
        P.vibrational_spectrum(frames, dt=1.0)


def test_rdf_of_fcc_lattice():
    a = 3.6
    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat(4)
    rdf = P.radial_distribution([atoms], nbins=400)
    assert rdf.first_peak == pytest.approx(a / np.sqrt(2), abs=0.03)
    # running coordination: 12 nearest neighbours, then 6 at a, then 24 at a·√(3/2)
    assert np.interp(3.0, rdf.r, rdf.coordination) == pytest.approx(12)
    assert np.interp(3.8, rdf.r, rdf.coordination) == pytest.approx(18)
    assert np.interp(4.6, rdf.r, rdf.coordination) == pytest.approx(42)
    assert np.all(rdf.g[rdf.r < 2.3] == 0)


def test_rdf_of_ideal_gas_is_one():
    rng = np.random.default_rng(0)
    frames = [Atoms("Ar500", positions=rng.uniform(0, 20, (500, 3)), cell=[20, 20, 20], pbc=True) for _ in range(20)]
    rdf = P.radial_distribution(frames, nbins=50)
    far = rdf.r > 2.0
    assert np.mean(rdf.g[far]) == pytest.approx(1.0, abs=0.02)
    assert np.std(rdf.g[far]) < 0.1


def test_rdf_pair_and_errors():
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(3)
    rdf = P.radial_distribution([atoms], pair=("Na", "Cl"), nbins=300)
    assert rdf.first_peak == pytest.approx(2.82, abs=0.03)
    assert np.interp(3.2, rdf.r, rdf.coordination) == pytest.approx(6)
    with pytest.raises(InputError, match="periodic"):
        P.radial_distribution([Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]])])


def test_diffusion_of_random_walk_through_wrapped_positions():
    rng = np.random.default_rng(1)
    n_atoms, n_steps, sigma, dt, box = 300, 1500, 0.05, 2.0, 12.0
    pos = np.cumsum(rng.normal(0.0, sigma, (n_steps, n_atoms, 3)), axis=0)
    frames = [Atoms(f"Ar{n_atoms}", positions=p, cell=[box] * 3, pbc=True) for p in pos]
    for f in frames:
        f.wrap()  # as a code that wraps atoms into the cell would write them
    expected = sigma**2 / (2 * dt) * P.A2_PER_FS_IN_CM2_PER_S  # per dimension: <dx²> = 2 D dt
    diff = P.diffusion_coefficient(frames, dt)
    assert diff.coefficient == pytest.approx(expected, rel=0.06)
    # without unwrapping the wrapped trajectory would give nonsense: the test can fail
    wrapped = np.stack([f.positions for f in frames])
    bad = P.diffusion_coefficient(None, dt, positions=wrapped)
    assert abs(bad.coefficient - expected) > 0.3 * expected


def test_msd_matches_direct_average():
    rng = np.random.default_rng(2)
    x = np.cumsum(rng.normal(size=(60, 4, 3)), axis=0)
    msd = P.mean_squared_displacement(x)
    direct = [np.mean(np.sum((x[k:] - x[: len(x) - k]) ** 2, axis=2)) for k in range(60)]
    np.testing.assert_allclose(msd, direct, rtol=1e-9, atol=1e-9)


def test_trajectory_properties_writes_plots(tmp_path):
    atoms = diatomic()
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    frames = []
    for _ in range(200):
        dyn.run(2)
        f = atoms.copy()
        f.set_velocities(atoms.get_velocities())
        frames.append(f)
    out = P.trajectory_properties(frames, 1.0, tmp_path, calculator=Spring(110.0, 1.13))
    assert out["kind"] == "molecule"
    assert (tmp_path / "spectrum.png").stat().st_size > 5000
    assert len(out["harmonic_cm-1"]) == 1

    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3)
    rng = np.random.default_rng(3)
    cframes = []
    for _ in range(20):
        c = cu.copy()
        c.positions += rng.normal(0, 0.05, c.positions.shape)
        cframes.append(c)
    out = P.trajectory_properties(cframes, 5.0, tmp_path / "cu")
    assert out["kind"] == "condensed"
    assert (tmp_path / "cu" / "rdf.png").exists() and (tmp_path / "cu" / "msd.png").exists()


def test_speed_row_and_baselines():
    from ase.calculators.emt import EMT

    from mlpkit.md import speed as S

    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    row = S.measure_md_speed(cu, EMT(), steps=5, timestep=2.0, engine="EMT", kind="baseline", method="emt")
    assert row.steps == 5 and row.n_atoms == 32
    assert row.ns_per_day == pytest.approx(2.0 * 1e-6 * 86400 / row.seconds_per_step)
    assert row.us_per_atom_step == pytest.approx(row.seconds_per_step / 32 * 1e6)
    assert "emt" in S.baseline_methods(cu)  # EMT is meaningful for Cu
    water = Atoms("H2O", positions=[[0, 0, 0], [0.76, 0.59, 0], [-0.76, 0.59, 0]])
    assert "emt" not in S.baseline_methods(water)  # ... and not for water
    assert S.baseline_methods(water, "none") == []
    assert S.format_rate(0.5) == "500.0 ps/day" and S.format_rate(12.0) == "12.0 ns/day"
