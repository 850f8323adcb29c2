"""Δ-learning and the ZBL wall: the contract on top of each term, exact term derivatives, residual labels."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from bpnn_contract import SMALL_BPNN, SmallBPNNContract
from mlpkit.potentials import create_potential
from mlpkit.potentials.delta import ZBL, DeltaPotential
from mlpkit.testing import labelled_water

SMALL = {"learned_family": "bpnn", "learned_hyperparameters": SMALL_BPNN}


class TestDeltaOnZBLContract(SmallBPNNContract):
    def make_potential(self, train):
        return create_potential("delta", train, baseline="zbl", **SMALL)


def test_zbl_forces_and_stress_are_exact_derivatives():
    rng = np.random.default_rng(1)
    atoms = Atoms("OH2", positions=[[0, 0, 0], [0.5, 0.1, 0], [-0.1, 0.55, 0.1]], cell=np.eye(3) * 3.0, pbc=True)
    atoms.positions += rng.normal(0, 0.02, (3, 3))
    term = ZBL(inner=0.3, outer=0.8)
    e, f, s = term.compute([atoms], stress=True)
    assert e[0] > 1.0  # a wall: atoms 0.5 Å apart repel
    eps = 1e-6
    for a in range(3):
        for d in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[a, d] += eps
            minus.positions[a, d] -= eps
            num = -(term.compute([plus], False)[0][0] - term.compute([minus], False)[0][0]) / (2 * eps)
            assert f[0][a, d] == pytest.approx(num, rel=1e-6, abs=1e-6)
    strain = np.eye(3)
    strain[0, 1] = strain[1, 0] = eps / 2
    plus = atoms.copy()
    plus.set_cell(atoms.cell[:] @ strain, scale_atoms=True)
    minus = atoms.copy()
    minus.set_cell(atoms.cell[:] @ (2 * np.eye(3) - strain), scale_atoms=True)
    num_xy = (term.compute([plus], False)[0][0] - term.compute([minus], False)[0][0]) / (2 * eps) / atoms.get_volume()
    assert s[0][5] == pytest.approx(num_xy, rel=1e-5)


def test_zbl_is_silent_at_bonding_distances():
    water = labelled_water(1)[0]
    e, f, _ = ZBL().compute([water], stress=False)
    assert e[0] == 0.0 and np.all(f[0] == 0.0)


def test_learned_part_sees_reference_minus_term():
    train = labelled_water(6)
    pot = create_potential("delta", train, baseline="gfn2", **SMALL)
    residual = pot.residual_labels(train)
    # the reference here is GFN2-xTB itself: nothing is left to learn
    assert max(abs(a.get_potential_energy()) for a in residual) < 1e-8
    assert isinstance(pot, DeltaPotential) and pot.learned.family == "bpnn"
    # and the whole model is the term plus the learned part
    pred, learned = pot.predict(train[:2]), pot.learned.predict(train[:2])
    ref = np.array([a.get_potential_energy() for a in train[:2]])
    np.testing.assert_allclose(pred.energy - learned.energy, ref, atol=1e-8)
