"""The "exploding dynamics" stop of run_md: sane small-molecule MD runs on, genuine blow-ups stop (issue 12)."""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.calculator import Calculator, all_changes

from mlpkit.md import run_md
from mlpkit.md.runaway import RunawayCheck, thermal_kinetic_bound


def _water() -> Atoms:
    a = molecule("H2O")
    a.center(vacuum=5.0)
    return a


class _Springs(Calculator):
    """Conservative: springs (k eV/Å²) between all pairs to their lengths in ``ref``, plus an optional hole, a pair
    attraction -depth·exp(-(r/0.5 Å)²) that pulls atoms together without bound (an MLP's energy falling off a cliff)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, ref: Atoms, k: float = 30.0, hole: float = 0.0):
        super().__init__()
        x0 = ref.positions
        self.d0 = np.linalg.norm(x0[:, None] - x0[None], axis=-1)
        self.k, self.hole = k, hole

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        x = self.atoms.positions
        d = x[:, None] - x[None]
        r = np.linalg.norm(d, axis=-1)
        off = ~np.eye(len(x), dtype=bool)
        dr = np.where(off, r - self.d0, 0.0)
        well = np.where(off, np.exp(-((r / 0.5) ** 2)), 0.0)
        e = 0.5 * self.k * np.sum(np.triu(dr**2, 1)) - self.hole * np.sum(np.triu(well, 1))
        # dE/dr per pair, then F_i = -Σ_j dE/dr_ij · (x_i - x_j)/r_ij
        de_dr = self.k * dr + self.hole * well * 2.0 * r / 0.25
        with np.errstate(invalid="ignore", divide="ignore"):
            unit = np.where(off[..., None], d / r[..., None], 0.0)
        self.results = {"energy": float(e), "forces": -np.sum(de_dr[..., None] * unit, axis=1)}


def _stretched_water() -> Atoms:
    """Water with both O-H bonds 0.1 Å long: ~0.6 eV above the springs' minimum, the kind of hot, distorted labelled
    configuration active-learning walkers start from."""
    a = _water()
    o = a.positions[0]
    for h in (1, 2):
        v = a.positions[h] - o
        a.positions[h] = o + v * (1.0 + 0.1 / np.linalg.norm(v))
    return a


def test_springs_forces_are_the_energy_gradient():
    a = _water()
    a.rattle(0.1, seed=3)
    calc = _Springs(_water(), hole=5.0)
    a.calc = calc
    f = a.get_forces()
    h = 1e-5
    for i, j in [(0, 0), (1, 2), (2, 1)]:
        b = a.copy()
        b.calc = calc
        b.positions[i, j] += h
        ep = b.get_potential_energy()
        b.positions[i, j] -= 2 * h
        em = b.get_potential_energy()
        assert abs(-(ep - em) / (2 * h) - f[i, j]) < 1e-5


def test_thermal_fluctuations_of_one_molecule_pass_the_new_bound_not_the_old_one():
    # 5e5 canonical kinetic energies of one water molecule with its centre of mass fixed (ASE's 6 degrees of
    # freedom): the old 5x rule stops ~4e-5 of them (~20), the new bound none (its tail is 1e-9)
    rng = np.random.default_rng(0)
    masses = np.array([16.0, 1.008, 1.008])
    t = 300.0
    p = rng.normal(size=(500_000, 3, 3)) * np.sqrt(masses * units.kB * t)[None, :, None]
    p -= masses[None, :, None] * (p.sum(axis=1) / masses.sum())[:, None, :]  # centre of mass at rest
    ekin = 0.5 * np.sum(p**2 / masses[None, :, None], axis=(1, 2))
    n_dof = 6
    assert abs(ekin.mean() / (n_dof / 2 * units.kB * t) - 1.0) < 0.01  # 6 degrees of freedom indeed
    old = np.sum(2 * ekin / (n_dof * units.kB) > 5 * t)
    assert 6 <= old <= 45
    assert np.sum(ekin > thermal_kinetic_bound(n_dof, t)) == 0
    # a large system keeps the old 5x (the thermal tail is tighter there)
    assert np.isclose(thermal_kinetic_bound(3000, t), 5 * 1500 * units.kB * t)


def test_a_distorted_start_at_300_K_runs_on_but_the_old_rule_stopped_it():
    a = _stretched_water()
    calc = _Springs(_water())
    a.calc = calc
    assert 0.5 < a.get_potential_energy() < 2.0  # eV above the minimum
    old = run_md(a, calc, temperature=300, steps=300, timestep=1.0, interval=10, seed=1, max_temperature=1500)
    assert "exploding" in old.stopped_because and old.steps_done < 20  # the start's energy, within a few fs
    new = run_md(a, calc, temperature=300, steps=300, timestep=1.0, interval=10, seed=1)
    assert new.completed, new.stopped_because
    assert new.temperatures.max() > 1500  # the same hot transient, now not mistaken for a blow-up


def test_an_integrator_blow_up_is_stopped():
    # springs of period ~11 fs integrated with 4.5 fs steps: velocity Verlet pumps energy in exponentially
    a = _water()
    res = run_md(
        a, _Springs(a), temperature=300, steps=500, timestep=4.5, interval=1000, seed=1, allow_bond_breaking=True
    )
    assert "exploding dynamics" in res.stopped_because and res.steps_done < 200


def test_a_potential_with_a_hole_is_stopped_although_it_conserves_energy():
    # a 20 eV well at short range: the atoms fall in (NVE: the total energy stays), releasing more than any start holds
    a = _water()
    res = run_md(
        a,
        _Springs(a, hole=20.0),
        ensemble="nve",
        temperature=300,
        steps=400,
        timestep=0.1,
        interval=1000,
        seed=1,
        allow_bond_breaking=True,
    )
    assert "exploding dynamics" in res.stopped_because


def test_the_bound_counts_released_energy_up_to_the_cap():
    check = RunawayCheck(n_dof=6, temperature=300, n_atoms=3, start_energy=1.0)
    thermal = check.thermal
    assert check.bound(1.0) == thermal and check.bound(2.0) == thermal  # nothing released going uphill
    assert np.isclose(check.bound(0.5), thermal + 0.5)
    assert np.isclose(check.bound(-100.0), thermal + 3.0)  # 1 eV per atom at most
    assert check.check(thermal + 0.4, 0.5) == ""
    assert "exploding" in check.check(thermal + 0.6, 0.5)
    assert "exploding" in check.check(float("inf"), 0.5)
    plain = RunawayCheck(n_dof=6, temperature=300, n_atoms=3, start_energy=1.0, max_temperature=1500)
    t1600 = 1600 * 3 * units.kB
    assert plain.check(t1600, 0.0).startswith("temperature 1600 K > 1500 K")
