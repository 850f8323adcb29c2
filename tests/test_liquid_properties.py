"""Liquid properties (mlpkit.md.liquid) against answers known in closed form: an ideal gas's partial RDFs are 1, a
rigid water box's intramolecular coordination, free particles' ballistic MSD, the Yeh-Hummer correction's size,
densities of prescribed cells, and the VDOS peak of harmonic oscillators in a periodic box."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units

from mlpkit.data import molecular_box
from mlpkit.md import liquid as L
from mlpkit.md import properties as P


def test_partial_rdfs_of_an_ideal_gas_are_one():
    """O32H64 at random positions in a 9.86 Å box (32-water density): every partial g(r) is 1 at all r. With a
    same-element normalisation of N instead of N-1, g_OO would sit at 31/32 = 0.969: the test can fail."""
    rng = np.random.default_rng(0)
    length = 9.8555
    frames = [
        Atoms("O32H64", positions=rng.uniform(0, length, (96, 3)), cell=[length] * 3, pbc=True) for _ in range(300)
    ]
    rdfs = L.partial_rdfs(frames, nbins=40)
    assert set(rdfs) == {"all", "H-H", "O-H", "O-O"}
    for name, rdf in rdfs.items():
        far = rdf.r > 1.5
        assert np.mean(rdf.g[far]) == pytest.approx(1.0, abs=0.008), name
    assert rdfs["O-O"].density == pytest.approx(32 / length**3)


def test_partial_rdfs_of_a_water_box_see_the_molecules_through_the_cell():
    """A packed box of rigid G2 waters: each O has exactly its 2 H within 1.2 Å, each H exactly its partner H within
    1.55 Å (r_HH = 1.52 Å), and no other atom closer than the packing's 1.6 Å, periodic images included."""
    box = molecular_box("H2O", 32, density=1.0, seed=2)
    rdfs = L.partial_rdfs([box], nbins=600)
    oh, hh, oo = rdfs["O-H"], rdfs["H-H"], rdfs["O-O"]
    assert list(rdfs) == ["all", "O-O", "O-H", "H-H"]
    assert np.interp(1.2, oh.r, oh.coordination) == pytest.approx(2.0)  # H around each O
    assert np.interp(1.55, hh.r, hh.coordination) == pytest.approx(1.0)
    assert np.interp(1.59, oo.r, oo.coordination) == 0.0
    assert np.interp(1.59, oh.r, oh.coordination) == pytest.approx(2.0)  # nothing intermolecular under 1.6 Å


def test_free_particles_move_ballistically_through_the_wrapped_cell():
    """Constant velocities: MSD(t) = <|v|²> t² exactly, after unwrapping positions wrapped into the cell."""
    rng = np.random.default_rng(1)
    n, steps, dt, box = 50, 60, 5.0, 8.0
    v = rng.normal(0.0, 0.02, (n, 3))  # Å/fs: 0.6 Å per frame, well under half a cell
    x0 = rng.uniform(0, box, (n, 3))
    frames = []
    for k in range(steps):
        a = Atoms(f"Ar{n}", positions=x0 + v * k * dt, cell=[box] * 3, pbc=True)
        a.wrap()
        frames.append(a)
    msd = P.mean_squared_displacement(P.unwrap_positions(frames))
    t = np.arange(steps) * dt
    assert np.allclose(msd, np.mean(np.sum(v**2, axis=1)) * t**2, rtol=1e-9, atol=1e-9)


def test_a_drifting_box_does_not_diffuse():
    """Every atom moving with the same velocity (centre-of-mass drift, as Langevin noise without FixCom gives) is
    no self-diffusion."""
    rng = np.random.default_rng(7)
    x0 = rng.uniform(0, 10, (30, 3))
    frames = [Atoms("O10H20", positions=x0 + 0.03 * k, cell=[10.0] * 3, pbc=True) for k in range(20)]
    for f in frames:
        f.wrap()
    sd = L.self_diffusion(frames, 5.0, temperature=300.0, element="O")
    assert abs(sd.periodic) < 1e-12


def test_a_barostat_rescaling_the_cell_is_not_diffusion():
    """Atoms fixed in fractional coordinates of a breathing cell (NPT's affine motion) do not diffuse."""
    rng = np.random.default_rng(2)
    frac = rng.uniform(0, 1, (40, 3))
    frames = []
    for k in range(30):
        cell = np.eye(3) * 10.0 * (1 + 0.02 * np.sin(0.5 * k))
        frames.append(Atoms("Ar40", scaled_positions=frac, cell=cell, pbc=True))
    msd = P.mean_squared_displacement(P.unwrap_positions(frames))
    assert np.abs(msd).max() < 1e-12


def test_yeh_hummer_correction_for_a_10_angstrom_water_box():
    """k_B T ξ / (6π η L) at 298.15 K, η = 0.89 mPa·s, L = 10 Å, by hand:
    1.380649e-23 x 298.15 x 2.837297 / (6π x 0.89e-3 x 1e-9) = 6.96e-10 m²/s = 6.96e-6 cm²/s (30% of water's
    2.3e-9 m²/s)."""
    assert L.yeh_hummer_correction(298.15, 10.0) == pytest.approx(6.962e-6, rel=1e-3)
    assert L.yeh_hummer_correction(298.15, 20.0) == pytest.approx(6.962e-6 / 2, rel=1e-3)  # ∝ 1/L
    assert L.yeh_hummer_correction(596.3, 10.0, viscosity=0.445e-3) == pytest.approx(4 * 6.962e-6, rel=1e-3)


def test_self_diffusion_adds_the_correction_to_the_random_walk_value():
    rng = np.random.default_rng(3)
    n, steps, sigma, dt, box = 100, 400, 0.05, 2.0, 12.0
    pos = np.cumsum(rng.normal(0.0, sigma, (steps, 2 * n, 3)), axis=0)
    frames = [Atoms(f"O{n}H{n}", positions=p, cell=[box] * 3, pbc=True) for p in pos]
    sd = L.self_diffusion(frames, dt, temperature=300.0, element="O")
    oxygens = np.arange(2 * n) < n
    # O atoms only, the centre of mass of the box held still
    still = pos - (np.einsum("a,tai->ti", frames[0].get_masses(), pos) / frames[0].get_masses().sum())[:, None]
    assert sd.periodic == pytest.approx(P.diffusion_coefficient(None, dt, positions=still[:, oxygens]).coefficient)
    expected = sigma**2 / (2 * dt) * P.A2_PER_FS_IN_CM2_PER_S
    assert sd.periodic == pytest.approx(expected, rel=0.3)
    assert sd.box_length == pytest.approx(12.0)
    assert sd.infinite - sd.periodic == pytest.approx(L.yeh_hummer_correction(300.0, 12.0))
    assert sd.to_dict()["D_infinite_cm2_per_s"] == sd.infinite
    # a random walk is diffusive at every lag: MSD ∝ t, no warning
    assert sd.diffusion.exponent == pytest.approx(1.0, abs=0.15) and sd.to_dict()["warning"] is None


def test_a_ballistic_trajectory_is_flagged_as_too_short_for_diffusion():
    """Atoms flying at constant velocity (what the first ~0.5 ps of a liquid look like): MSD ∝ t², and the
    coefficient carries a warning instead of passing for a result."""
    rng = np.random.default_rng(4)
    v = rng.normal(0.0, 0.01, (40, 3))  # Å/fs
    start = rng.uniform(0.0, 10.0, (40, 3))
    frames = [Atoms("O20H20", positions=start + v * 2.0 * k, cell=[10.0] * 3, pbc=True) for k in range(50)]
    sd = L.self_diffusion(frames, 2.0, temperature=300.0, element="O")
    assert sd.diffusion.exponent == pytest.approx(2.0, abs=0.05)
    warning = sd.to_dict()["warning"]
    assert warning and "too short" in warning and "t^2.00" in warning


def test_density_series_of_prescribed_cells():
    box = molecular_box("H2O", 8, density=1.0, seed=0)
    rng = np.random.default_rng(4)
    scales = 1 + 0.01 * rng.normal(size=400)  # volume ∝ scale³, uncorrelated frames
    frames = []
    for s in scales:
        a = box.copy()
        a.set_cell(box.cell[:] * s, scale_atoms=True)
        frames.append(a)
    series = L.density_series(frames, dt=10.0, skip_fraction=0.25)
    assert series.density == pytest.approx(1.0 / scales**3, rel=1e-9)
    assert series.time[-1] == pytest.approx(3990.0)
    kept = 1.0 / scales[100:] ** 3
    assert series.mean == pytest.approx(kept.mean())
    # white noise: the block standard error is the naive one within the scatter of an 8-block estimate
    assert series.standard_error == pytest.approx(kept.std() / np.sqrt(len(kept)), rel=0.6)


def test_vdos_peak_of_harmonic_oscillators_in_a_box():
    """Independent 3D oscillators at 1000 cm⁻¹ with random phases, periodic cell: the VDOS peaks at 1000 cm⁻¹
    within the resolution (velocities from the frames' momenta, as an MD trajectory stores them)."""
    rng = np.random.default_rng(5)
    n, steps, dt = 20, 512, 1.0
    omega = 2 * np.pi * 1000.0 * P.C_CM_PER_FS  # rad/fs
    phase = rng.uniform(0, 2 * np.pi, (n, 3))
    t = np.arange(steps)[:, None, None] * dt
    x0 = rng.uniform(0, 10, (n, 3))
    pos = x0 + 0.1 * np.sin(omega * t + phase)
    vel = 0.1 * omega * np.cos(omega * t + phase)  # Å/fs
    frames = []
    for k in range(steps):
        a = Atoms(f"O{n}", positions=pos[k], cell=[10.0] * 3, pbc=True)
        a.set_velocities(vel[k] / units.fs)  # ASE velocity unit: Å per ASE time
        frames.append(a)
    spec = P.vibrational_spectrum(frames, dt)
    assert spec.peaks[-1] == pytest.approx(1000.0, abs=spec.resolution)


def test_condensed_properties_report_everything_for_an_npt_water_trajectory(tmp_path):
    """A synthetic NPT-like water trajectory (rigid box, breathing cell, drifting molecules, velocities): RDFs,
    corrected diffusion of O, density series and VDOS come back with their plots."""
    box = molecular_box("H2O", 8, density=1.0, seed=1)
    rng = np.random.default_rng(6)
    drift = np.repeat(rng.normal(size=(8, 3)), 3, axis=0)
    frames = []
    for k in range(40):
        a = box.copy()
        a.set_cell(box.cell[:] * (1 + 0.005 * np.sin(0.3 * k)), scale_atoms=True)
        a.positions += 0.05 * k * drift  # each molecule moves ballistically
        a.set_momenta(rng.normal(0, 0.5, (24, 3)))
        a.info["target_temperature"] = 300.0
        frames.append(a)
    out = L.condensed_properties(frames, 5.0, tmp_path)
    assert {r["pair"] for r in out["rdf"]} == {"all", "H-H", "O-H", "O-O"}
    d = out["diffusion"]
    assert d["element"] == "O" and d["temperature_K"] == 300.0
    assert d["D_infinite_cm2_per_s"] - d["D_pbc_cm2_per_s"] == pytest.approx(
        L.yeh_hummer_correction(300.0, 6.2086), rel=1e-3
    )
    assert 0.99 < out["density"]["mean_g_per_cm3"] < 1.01
    assert "peaks_cm-1" in out["vdos"]
    for name in ("rdf", "msd", "density", "vdos"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
