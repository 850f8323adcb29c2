"""The BPNN inference fast path (hand-derived descriptor backward over pair chunks) equals autograd exactly.

Prediction and MD use ``SymmetryFunctions.forward(..., fast=True)``; training on forces differentiates the
forces again and keeps autograd. Both must give the same features, the same gradients and hence the same
forces and stress, for every descriptor variant and for chunk boundaries falling anywhere.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlpkit.descriptors import symmetry_fast
from mlpkit.descriptors.graph import collate, graph_arrays
from mlpkit.descriptors.neighbors import neighbor_list
from mlpkit.potentials.bpnn import BPNNPotential, energy_forces
from mlpkit.testing import water_cluster

VARIANTS = [
    {},
    {"n_angular": 0},
    {"cutoff_function": "polynomial"},
    {"angular_order": 1, "angular_cutoff": 4.5},
    {"angular_order": 2, "n_radial": 5, "width": 0.7},
]


@pytest.fixture(scope="module")
def box():
    return water_cluster(27, spacing=3.1, seed=3, periodic=True)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("chunk", [7, 4096])
def test_fast_features_and_gradients_equal_autograd(box, variant, full, chunk, monkeypatch):
    monkeypatch.setattr(symmetry_fast, "PAIR_CHUNK", chunk)
    pot = BPNNPotential(["H", "O"], cutoff=4.5, **variant)
    sf = pot.module.descriptor
    # a list with a skin (pairs beyond the cutoff included), half or full
    g = graph_arrays(box, pot.species, pot.cutoff, nlist=neighbor_list(box, pot.cutoff + 0.5, full=full))
    b = collate([g], torch.float64)
    v1 = b.vectors.clone().requires_grad_(True)
    v2 = b.vectors.clone().requires_grad_(True)
    slow = sf(v1, b.centers, b.neighbors, b.species, b.half)
    fast = sf(v2, b.centers, b.neighbors, b.species, b.half, fast=True)
    scale = float(slow.detach().abs().max())
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-12 * scale)
    weights = torch.randn(slow.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    (g1,) = torch.autograd.grad((slow * weights).sum(), v1)
    (g2,) = torch.autograd.grad((fast * weights).sum(), v2)
    torch.testing.assert_close(g2, g1, rtol=0, atol=1e-12 * float(g1.abs().max()))


def test_prediction_uses_fast_path_and_matches_training_path(box):
    """energy_forces without create_graph (prediction) equals the autograd path (training), forces and stress."""
    pot = BPNNPotential(["H", "O"], cutoff=5.0)
    g = pot.graph(box)
    e1, f1, s1 = energy_forces(pot.module, collate([g], torch.float64), stress=True)
    e2, f2, s2 = energy_forces(pot.module, collate([g], torch.float64), stress=True, create_graph=True)
    np.testing.assert_allclose(e1.detach().numpy(), e2.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(f1.detach().numpy(), f2.detach().numpy(), atol=1e-13 * float(f2.detach().abs().max()))
    np.testing.assert_allclose(s1.detach().numpy(), s2.detach().numpy(), atol=1e-13 * float(s2.abs().max()))
    assert f1.grad_fn is None or not f1.requires_grad  # the fast path builds no second-order graph


def test_fast_path_forces_are_minus_energy_gradient(box):
    """Finite differences on a few coordinates of a periodic box, through predict (the fast path)."""
    pot = BPNNPotential(["H", "O"], cutoff=5.0, init_seed=1)
    forces = pot.predict([box]).forces[0]
    h = 1e-5
    for atom, axis in [(0, 0), (5, 1), (40, 2)]:
        plus, minus = box.copy(), box.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        ep, em = pot.predict([plus, minus]).energy
        assert forces[atom, axis] == pytest.approx(-(ep - em) / (2 * h), rel=1e-6, abs=1e-8)
