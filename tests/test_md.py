"""run_md: integrators, frames and trajectories, the uncertainty watchdog, unphysical-dynamics detection."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from mlpkit.errors import InputError
from mlpkit.md import UncertaintyWatchdog, run_md


def _water() -> Atoms:
    a = molecule("H2O")
    a.center(vacuum=5.0)
    return a


class _Harmonic(Calculator):
    """Bonds of a molecule as springs to their initial lengths, plus an optional fake uncertainty per call.

    sigma(n) gives ``max_force_std`` on the n-th call; ``nan_after`` makes forces NaN after that many calls.
    """

    implemented_properties = ["energy", "forces", "max_force_std", "forces_std", "energy_std"]

    def __init__(self, ref: Atoms, k: float = 30.0, sigma=None, nan_after: int | None = None, kick: float = 0.0):
        super().__init__()
        self.x0 = ref.positions.copy()
        self.d0 = np.linalg.norm(self.x0[:, None] - self.x0[None], axis=-1)
        self.k, self.sigma, self.nan_after, self.kick = k, sigma, nan_after, kick
        self.calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        x = self.atoms.positions
        d = x[:, None] - x[None]
        r = np.linalg.norm(d, axis=-1)
        dr = np.where(self.d0 > 0, r - self.d0, 0.0)
        e = 0.5 * self.k * np.sum(np.triu(dr**2, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            f = -np.sum(np.where(r[..., None] > 0, self.k * dr[..., None] * d / r[..., None], 0.0), axis=1)
        f = f + self.kick * np.sign(x - x.mean(0))  # constant outward push: atoms fly apart
        if self.nan_after is not None and self.calls > self.nan_after:
            f = f * np.nan
        self.results = {"energy": e, "forces": f}
        if self.sigma is not None:
            s = float(self.sigma(self.calls))
            self.results.update(max_force_std=s, energy_std=0.0, forces_std=np.full((len(x), 3), s / np.sqrt(3)))


def test_nvt_frames_info_trajectory_and_seeding(tmp_path):
    a = _water()
    r1 = run_md(
        a, _Harmonic(a), temperature=300, steps=200, interval=20, timestep=0.5, seed=7, trajectory=tmp_path / "t.extxyz"
    )
    r2 = run_md(
        a, _Harmonic(a), temperature=300, steps=200, interval=20, timestep=0.5, seed=7, trajectory=tmp_path / "t.traj"
    )
    r3 = run_md(a, _Harmonic(a), temperature=300, steps=200, interval=20, timestep=0.5, seed=8)
    assert r1.completed and r1.steps_done == 200 and len(r1.frames) == 10
    assert [f.info["step"] for f in r1.frames] == list(range(20, 201, 20))
    assert {"temperature", "time_fs", "mlp_energy", "thermostat"} <= set(r1.frames[0].info)
    assert r1.frames[0].calc is None  # predictions never pose as labels
    np.testing.assert_allclose(r1.frames[-1].positions, r2.frames[-1].positions)
    assert not np.allclose(r1.frames[-1].positions, r3.frames[-1].positions)
    from ase.io import read

    assert len(read(tmp_path / "t.extxyz", ":")) == 10
    assert len(read(tmp_path / "t.traj", ":")) == 10
    assert len(r1.temperatures) == 200
    np.testing.assert_allclose(a.positions, _water().positions)  # input untouched
    with pytest.raises(InputError):
        run_md(a, _Harmonic(a), temperature=300, steps=10, interval=0)
    with pytest.raises(InputError):
        run_md(a, _Harmonic(a), temperature=300, steps=10, ensemble="npt")
    with pytest.raises(InputError):
        run_md(a, _Harmonic(a), temperature=300, steps=10, trajectory=tmp_path / "t.pdb")


def test_nve_conserves_energy():
    a = bulk("Cu", cubic=True).repeat((2, 2, 2))
    a.rattle(0.05, seed=1)
    res = run_md(a, EMT(), ensemble="nve", temperature=300, steps=200, interval=10, timestep=2.0, seed=1)
    assert res.completed
    etot = [f.info["mlp_energy"] + f.get_kinetic_energy() for f in res.frames]
    assert np.ptp(etot) < 5e-3 * len(a)  # eV: velocity Verlet conserves the total energy


def test_watchdog_warns_keeps_uncertain_frames_and_stops():
    a = _water()
    wd = UncertaintyWatchdog(warn=0.1, stop=0.3, scale=2.0)  # calibrated = 2 × raw
    calc = _Harmonic(a, sigma=lambda n: 0.002 * n)  # raw σ grows by 0.002 eV/Å per call
    res = run_md(a, calc, temperature=300, steps=500, interval=10, watchdog=wd, timestep=0.5)
    assert res.stopped_because.startswith("uncertainty") and not res.unphysical
    # calibrated σ passes 0.3 when raw σ passes 0.15, i.e. around call 75
    assert 70 <= res.steps_done <= 80
    assert res.uncertain_frames and all(0.1 <= f.info["uncertainty"] < 0.3 for f in res.uncertain_frames)
    assert res.frames[-1].info["stopped_because"] == res.stopped_because
    assert res.uncertainties.max() >= 0.3
    with pytest.raises(InputError):
        UncertaintyWatchdog(warn=0.3, stop=0.1)
    with pytest.raises(InputError, match="reports an uncertainty"):
        run_md(a, _Harmonic(a), temperature=300, steps=5, watchdog=UncertaintyWatchdog(0.1, 0.2))


def test_unphysical_dynamics_are_caught():
    a = _water()
    nan = run_md(a, _Harmonic(a, nan_after=30), temperature=300, steps=100, interval=10)
    assert "non-finite" in nan.stopped_because and nan.unphysical
    hot = run_md(a, _Harmonic(a), temperature=300, steps=100, interval=10, max_temperature=1.0)
    assert hot.stopped_because.startswith("temperature")
    apart = run_md(
        a, _Harmonic(a, k=0.0, kick=0.3), temperature=300, steps=400, interval=10, timestep=1.0, max_temperature=1e9
    )
    assert "bond broken" in apart.stopped_because
    allowed = run_md(
        a,
        _Harmonic(a, k=0.0, kick=0.3),
        temperature=300,
        steps=400,
        interval=10,
        timestep=1.0,
        allow_bond_breaking=True,
        max_temperature=1e9,
    )
    assert allowed.completed


class _Spread(Calculator):
    """EMT with a fixed committee-style spread (``max_force_std``), so the watchdog can watch a periodic box."""

    implemented_properties = ["energy", "forces", "stress", "max_force_std", "forces_std", "energy_std"]

    def __init__(self, sigma: float = 0.01):
        super().__init__()
        self.emt, self.sigma = EMT(), sigma

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms.copy()
        a.calc = self.emt
        self.results = {"energy": a.get_potential_energy(), "forces": a.get_forces(), "stress": a.get_stress()}
        self.results.update(max_force_std=self.sigma, energy_std=0.0, forces_std=np.zeros((len(a), 3)))


def test_watchdog_stops_a_box_that_leaves_its_density_range():
    box = bulk("Cu", cubic=True).repeat(2)
    rho = float(box.get_masses().sum()) / box.get_volume() / 0.6022140857  # g/cm³ (amu/Å³ -> g/cm³)
    wd = UncertaintyWatchdog(0.1, 0.3, density_range=(0.9 * rho, 1.1 * rho))
    res = {"max_force_std": 0.01}
    assert wd.check(box, res) == "ok" and wd.density(box) == pytest.approx(rho)
    dilute = box.copy()
    dilute.set_cell(box.cell * 1.05, scale_atoms=True)  # 0.86 x the density: below the range
    wd.reset()
    assert wd.check(dilute, res) == "stop" and wd.stop_reason.startswith(f"density {rho / 1.05**3:.3f} g/cm³")
    molecule_ = _water()  # no cell: no density to guard
    assert UncertaintyWatchdog(0.1, 0.3, density_range=(5.0, 6.0)).check(molecule_, res) == "ok"
    for bad in [(0.0, 1.0), (2.0, 1.0), (1.0, float("nan"))]:
        with pytest.raises(InputError, match="density range"):
            UncertaintyWatchdog(0.1, 0.3, density_range=bad)
    # in an NPT run: the box stays inside a range around its density, and is stopped outside a range above it
    box.rattle(0.02, seed=3)
    kw = dict(ensemble="npt", temperature=300, steps=30, interval=10, timestep=2.0, pressure=1.0, seed=1)
    inside = run_md(box, _Spread(), watchdog=UncertaintyWatchdog(0.1, 0.3, density_range=(0.8 * rho, 1.2 * rho)), **kw)
    assert inside.completed
    above = run_md(box, _Spread(), watchdog=UncertaintyWatchdog(0.1, 0.3, density_range=(1.1 * rho, 2 * rho)), **kw)
    assert above.steps_done == 1 and "left the range the potential was trained on" in above.stopped_because
