"""The temperature of a small molecule's MD: mean with a block standard error, the expected fluctuation, the why."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from mlpkit.md import run_md
from mlpkit.md.temperature import block_standard_error, kinetic_dof, temperature_summary


def _correlated(n: int, mean: float, std: float, corr: float, seed: int = 0) -> np.ndarray:
    """An AR(1) series: successive MD steps are correlated like this."""
    rng = np.random.default_rng(seed)
    x = np.empty(n)
    x[0] = rng.normal()
    for i in range(1, n):
        x[i] = corr * x[i - 1] + np.sqrt(1 - corr**2) * rng.normal()
    return mean + std * x


def test_block_error_accounts_for_correlation():
    t = _correlated(20000, 300.0, 170.0, 0.99)
    sem, blocks = block_standard_error(t)
    naive = t.std() / np.sqrt(len(t))
    assert blocks == 10 and sem > 5 * naive  # the step-to-step error bar would be far too small
    assert abs(t.mean() - 300.0) < 4 * sem
    assert block_standard_error(np.ones(3)) == (pytest.approx(float("nan"), nan_ok=True), 0)


def test_canonical_fluctuation_of_a_three_atom_molecule():
    """Kinetic temperature with N_dof = 6 is T·chi²(6)/6: std T·sqrt(2/6), ±173 K at 300 K."""
    rng = np.random.default_rng(1)
    t = 300.0 * rng.chisquare(6, size=50000) / 6
    s = temperature_summary(t, n_dof=6, target=300.0, n_atoms=3, friction=0.01)
    assert s.expected_std == pytest.approx(300 * np.sqrt(2 / 6))
    assert s.std == pytest.approx(s.expected_std, rel=0.03)  # the formula the note quotes is right
    assert abs(s.offset_in_sem) < 4
    assert "6 kinetic degrees of freedom" in s.note and "±173 K" in s.note and "below" not in s.note


def test_a_mean_far_below_the_target_is_explained():
    """The field report: 162 K mean at 300 K for one water molecule, with weak friction."""
    t = _correlated(4000, 162.0, 90.0, 0.95, seed=2)
    s = temperature_summary(t, n_dof=6, target=300.0, friction=0.002, n_atoms=3)
    assert s.offset_in_sem < -3
    assert "below the target" in s.note and "time constant 500 fs" in s.note and "run longer" in s.note
    nve = temperature_summary(t, n_dof=9, target=300.0, ensemble="nve")
    assert "expected in NVE" in nve.note and "±" in nve.note and "kinetic degrees" not in nve.note
    with pytest.raises(ValueError, match="no finite"):
        temperature_summary([np.nan], n_dof=6)


def test_run_md_records_what_the_summary_needs():
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    res = run_md(cu, EMT(), temperature=300.0, steps=40, interval=10, friction=0.01)
    assert res.n_dof == 3 * len(cu) - 3  # FixCom under Langevin
    s = res.temperature_summary()
    assert s.mean == pytest.approx(res.temperatures.mean()) and s.target == 300.0 and s.blocks == 10
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.5]])
    assert kinetic_dof(atoms) == 6
