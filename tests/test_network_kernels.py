"""The compiled per-element networks (mlpkit.potentials.bpnn.network_kernels) against the torch networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlpkit.potentials.bpnn import BPNNPotential
from mlpkit.potentials.bpnn.network_kernels import CompiledNetworks


def _potential(activation: str, hidden=(16, 8), seed: int = 3) -> BPNNPotential:
    pot = BPNNPotential(("H", "O"), hidden=list(hidden), init_seed=seed, activation=activation)
    with torch.no_grad():  # a non-trivial standardisation and energy scale (folded into the first layer)
        gen = torch.Generator().manual_seed(1)
        pot.module.feature_mean.copy_(torch.rand(pot.module.feature_mean.shape, generator=gen))
        pot.module.feature_std.copy_(0.5 + torch.rand(pot.module.feature_std.shape, generator=gen))
        pot.module.energy_scale.fill_(0.7)
    return pot


def _torch_reference(module, G, species, image, n_images):
    g = torch.tensor(G, requires_grad=True)
    e_atom = module.energies_from_features(g, torch.as_tensor(species))
    energy = torch.zeros(n_images, dtype=torch.float64).index_add(0, torch.as_tensor(image), e_atom)
    (grad,) = torch.autograd.grad(energy.sum(), g)
    return energy.detach().numpy(), grad.numpy()


@pytest.mark.parametrize("activation", ["silu", "tanh", "softplus", "celu", "gelu"])
@pytest.mark.parametrize("blocks", [1, 3])
def test_compiled_networks_match_torch(activation, blocks):
    pot = _potential(activation, hidden=(16, 12, 8))  # 12: a row count that is not a multiple of 4
    n, F = 101, pot.module.descriptor.n_features
    rng = np.random.default_rng(0)
    G = rng.normal(size=(n, F))
    species = rng.integers(0, 2, size=n)
    image = np.repeat([0, 1], [40, 61])
    ref_e, ref_g = _torch_reference(pot.module, G, species, image, 2)
    nets = CompiledNetworks()
    assert CompiledNetworks.supports(pot.module)
    nets.update(pot.module)
    bounds = np.linspace(0, n, blocks + 1).astype(np.int64)
    energy, grad = nets(G, species, image, 2, bounds)
    np.testing.assert_allclose(energy, ref_e, rtol=1e-13, atol=0)
    np.testing.assert_allclose(grad, ref_g, rtol=0, atol=1e-13 * np.abs(ref_g).max())


def test_repacked_when_weights_change_and_training_mode_uses_torch():
    pot = _potential("silu")
    nets = CompiledNetworks()
    nets.update(pot.module)
    packed = nets.weights.copy()
    nets.update(pot.module)
    assert np.array_equal(nets.weights, packed)  # unchanged weights: no repack needed, same values
    with torch.no_grad():
        pot.module.nets[1][0].weight.mul_(1.5)  # an in-place change (as an optimiser step)
    nets.update(pot.module)
    assert not np.array_equal(nets.weights, packed)
    pot.module.load_state_dict(_potential("silu", seed=9).module.state_dict())
    G = np.random.default_rng(1).normal(size=(5, pot.module.descriptor.n_features))
    species, image = np.array([0, 1, 0, 1, 1]), np.zeros(5, dtype=np.int64)
    nets.update(pot.module)
    energy, _ = nets(G, species, image, 1, None)
    np.testing.assert_allclose(energy, _torch_reference(pot.module, G, species, image, 1)[0], rtol=1e-13)
    pot.module.train()  # MC-dropout: dropout active, only the torch networks do that
    assert not CompiledNetworks.supports(pot.module)
