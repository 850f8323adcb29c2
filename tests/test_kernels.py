"""The compiled (numba) descriptor kernels against the torch implementation, and the MD path built on them.

Finite-difference forces/stress of the kernel path are covered by the potential contract (``test_bpnn.py``
predicts through the kernels on the CPU); here: same features, forces and virial as torch autograd, the
tables' interpolation error, batches of several configurations, and the spatially sorted MD graph.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from mlpkit.descriptors.graph import concatenate, graph_arrays
from mlpkit.descriptors.kernel_threads import symmetry_features, symmetry_forces
from mlpkit.descriptors.kernels import pair_vectors
from mlpkit.descriptors.neighbors import neighbor_list, spatial_order
from mlpkit.descriptors.symmetry import SymmetryFunctions, SymmetryFunctionSettings
from mlpkit.descriptors.tables import TABLE_TOLERANCE, Workspace, analytic_basis, basis_table
from mlpkit.potentials.bpnn import BPNNPotential


def _water_box(n_side: int = 4, seed: int = 0) -> Atoms:
    """Periodic box of rattled water molecules on a lattice (3 n_side³ atoms, ~1 g/cm³)."""
    rng = np.random.default_rng(seed)
    a = 3.1
    mol = molecule("H2O")
    mol.positions -= mol.positions.mean(axis=0)
    atoms = Atoms(cell=np.eye(3) * a * n_side, pbc=True)
    for x in range(n_side):
        for y in range(n_side):
            for z in range(n_side):
                m = mol.copy()
                m.rotate(rng.uniform(0, 360), rng.normal(size=3))
                m.positions += (np.array([x, y, z]) + 0.5) * a
                atoms += m
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    return atoms


def _torch_features(sf: SymmetryFunctions, g) -> tuple[torch.Tensor, torch.Tensor]:
    vectors = torch.tensor(g.vectors, requires_grad=True)
    feats = sf(vectors, torch.tensor(g.centers), torch.tensor(g.neighbors), torch.tensor(g.species), g.half)
    return vectors, feats


def _kernel(sf: SymmetryFunctions, g, grad: np.ndarray | None = None, n_images: int = 1, threads: int = 1):
    kp = sf.kernel_parameters()
    n = len(g.species)
    feats = np.empty((n, sf.n_features))
    moments = np.empty((n, sf.n_species, max(sf.n_angular, 1), sf.n_monomials))
    image = getattr(g, "image", np.zeros(n, dtype=np.int64))
    symmetry_features(g.vectors, g.centers, g.neighbors, g.species, g.half, feats, moments, *kp.args(), threads=threads)
    if grad is None:
        return feats
    forces, virial = np.empty((n, 3)), np.empty((n_images, 3, 3))
    symmetry_forces(g.vectors, g.centers, g.neighbors, g.species, image, g.half, grad, moments, forces, virial,
                    *kp.args(), threads=threads)  # fmt: skip
    return feats, forces, virial


SETTINGS = [
    {},
    {"cutoff_function": "polynomial"},
    {"n_angular": 0},
    {"angular_order": 0, "n_angular": 3},
    {"angular_order": 5, "n_radial": 24, "width": 0.7},
    {"cutoff": 4.0, "n_radial": 8, "n_angular": 4, "angular_cutoff": 3.5},
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_tables_are_within_tolerance_and_exact_at_knots(settings):
    sf = SymmetryFunctions(SymmetryFunctionSettings(species=("H", "O"), **settings))
    kp = sf.kernel_parameters()
    assert kp.table_error <= TABLE_TOLERANCE
    mu = sf.mu.numpy()
    table, h, _ = basis_table(mu, sf.eta, sf.cutoff, sf.cosine)
    knots = np.arange(table.shape[0] - 1) * h
    value, deriv = analytic_basis(knots, mu, sf.eta, sf.cutoff, sf.cosine)
    np.testing.assert_array_equal(table[:-1, 0], value)
    np.testing.assert_array_equal(table[:-1, 1], deriv)
    assert np.all(table[-1] == 0.0)  # the basis and its derivative vanish at the cutoff


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("full", [False, True])
def test_kernel_matches_torch_features_forces_virial(settings, full):
    sf = SymmetryFunctions(SymmetryFunctionSettings(species=("H", "O"), **settings)).double()
    atoms = _water_box(3, seed=1)
    nl = neighbor_list(atoms, sf.cutoff + 0.4, full=full)  # a skin: pairs beyond the cutoff must be skipped
    g = graph_arrays(atoms, sf.settings.species, sf.cutoff, nlist=nl)
    vectors, ref = _torch_features(sf, g)
    w = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    (ref * w).sum().backward()
    grad_v = vectors.grad.numpy()
    ref_forces = np.zeros((len(atoms), 3))
    np.add.at(ref_forces, g.centers, grad_v)
    np.add.at(ref_forces, g.neighbors, -grad_v)
    ref_virial = g.vectors.T @ grad_v

    feats, forces, virial = _kernel(sf, g, np.ascontiguousarray(w.numpy()))
    scale = float(ref.detach().abs().max())
    np.testing.assert_allclose(feats, ref.detach().numpy(), atol=1e-8 * scale, rtol=0)
    # derivatives of the Hermite interpolant: error O(h^3), well below 1e-6 of the largest component
    np.testing.assert_allclose(forces, ref_forces, atol=1e-6 * np.abs(ref_forces).max(), rtol=0)
    np.testing.assert_allclose(virial[0], ref_virial, atol=1e-6 * np.abs(ref_virial).max(), rtol=0)


def test_kernel_three_species_and_isolated_molecule():
    sf = SymmetryFunctions(SymmetryFunctionSettings(species=("H", "C", "O"), cutoff=5.0)).double()
    atoms = molecule("CH3CH2OH")
    g = graph_arrays(atoms, sf.settings.species, sf.cutoff)
    _, ref = _torch_features(sf, g)
    feats = _kernel(sf, g)
    np.testing.assert_allclose(feats, ref.detach().numpy(), atol=1e-8 * float(ref.detach().abs().max()), rtol=0)


def test_batch_virial_per_configuration():
    sf = SymmetryFunctions(SymmetryFunctionSettings(species=("H", "O"))).double()
    boxes = [_water_box(3, seed=s) for s in (2, 3)]
    parts = [graph_arrays(b, ("H", "O"), sf.cutoff) for b in boxes]
    batch = concatenate(parts)
    n = len(batch.species)
    grad = np.random.default_rng(0).normal(size=(n, sf.n_features))
    _, forces, virial = _kernel(sf, batch, grad, n_images=2)
    for k, part in enumerate(parts):
        rows = slice(k * len(boxes[0]), (k + 1) * len(boxes[0]))
        _, f_one, w_one = _kernel(sf, part, np.ascontiguousarray(grad[rows]))
        np.testing.assert_allclose(forces[rows], f_one, atol=1e-12)
        np.testing.assert_allclose(virial[k], w_one[0], atol=1e-10)


def test_pair_vectors_and_spatial_order():
    atoms = _water_box(3, seed=4)
    atoms.positions += 5.0  # some atoms outside the cell: shifts matter
    nl = neighbor_list(atoms, 6.0)
    pos = atoms.positions
    expected = pos[nl.j] - pos[nl.i] + nl.shifts @ atoms.cell[:]
    got = pair_vectors(pos, nl.i, nl.j, nl.shifts, np.ascontiguousarray(atoms.cell[:]))
    np.testing.assert_allclose(got, expected, atol=1e-12)
    order = spatial_order(atoms.positions, atoms.cell[:], atoms.pbc)
    assert sorted(order.tolist()) == list(range(len(atoms)))
    mol_order = spatial_order(molecule("CH3CH2OH").positions, np.zeros((3, 3)), [False] * 3)
    assert sorted(mol_order.tolist()) == list(range(9))


def test_md_path_sorted_and_compiled_equals_torch_path():
    """A large structure goes through the Verlet list, Morton-sorted atoms and the kernels; a small copy of
    the same potential through the plain torch path: same energy, forces (in the caller's atom order), stress."""
    atoms = _water_box(5, seed=5)  # 375 atoms: the MD path
    rng = np.random.default_rng(0)
    atoms = atoms[rng.permutation(len(atoms))]  # atoms in random memory order, as after long MD
    pot = BPNNPotential(("H", "O"), hidden=[16, 16], init_seed=3)
    with torch.no_grad():  # a non-trivial normalisation (prediction folds it into the first layer)
        gen = torch.Generator().manual_seed(1)
        pot.module.feature_mean.copy_(torch.rand(pot.module.feature_mean.shape, generator=gen))
        pot.module.feature_std.copy_(0.5 + torch.rand(pot.module.feature_std.shape, generator=gen))
        pot.module.energy_scale.fill_(0.7)
    fast = pot.predict([atoms], stress=True)
    assert pot.md_graph is not None and pot.md_graph.n_builds == 1
    pot.compiled = False
    plain = pot.predict([atoms.copy()], stress=True)
    np.testing.assert_allclose(fast.energy, plain.energy, rtol=0, atol=1e-7 * abs(plain.energy[0]))
    np.testing.assert_allclose(fast.forces[0], plain.forces[0], atol=1e-6 * np.abs(plain.forces[0]).max(), rtol=0)
    np.testing.assert_allclose(fast.stress, plain.stress, atol=1e-6 * np.abs(plain.stress).max(), rtol=0)
    # moving atoms within the skin reuses the sorted list; results still follow the caller's order
    pot.compiled = True
    moved = atoms.copy()
    moved.positions += rng.normal(scale=0.02, size=moved.positions.shape)
    builds = pot.md_graph.n_builds
    again = pot.predict([moved])
    assert pot.md_graph.n_builds == builds
    pot.compiled = False
    pot.md_graph = None
    ref = pot.predict([moved])
    np.testing.assert_allclose(again.forces[0], ref.forces[0], atol=1e-6 * np.abs(ref.forces[0]).max(), rtol=0)


def test_workspace_reuses_memory_and_results_are_not_views():
    atoms = _water_box(5, seed=6)
    pot = BPNNPotential(("H", "O"), hidden=[8], init_seed=1)
    first = pot.predict([atoms]).forces[0].copy()
    out = pot.predict([atoms])
    moved = atoms.copy()
    moved.positions[0] += 0.3
    pot.predict([moved])
    np.testing.assert_array_equal(out.forces[0], first)  # an earlier result is not overwritten by a later call
    ws = Workspace()
    a = ws.get("x", (4, 3))
    assert ws.get("x", (4, 3)) is a and ws.get("x", (5, 3)) is not a
    assert pickle.loads(pickle.dumps(ws))._arrays == {} and copy.deepcopy(ws)._arrays == {}


def test_float32_model_uses_float32_arrays_and_agrees_to_float32_precision():
    atoms = _water_box(5, seed=7)
    pot64 = BPNNPotential(("H", "O"), hidden=[16, 16], init_seed=4)
    pot32 = BPNNPotential(("H", "O"), hidden=[16, 16], init_seed=4, dtype="float32")
    ref, got = pot64.predict([atoms], stress=True), pot32.predict([atoms], stress=True)
    assert pot32._workspace._arrays["moments"].dtype == np.float32
    assert pot64._workspace._arrays["moments"].dtype == np.float64
    assert abs(got.energy[0] - ref.energy[0]) < 1e-5 * abs(ref.energy[0])
    np.testing.assert_allclose(got.forces[0], ref.forces[0], atol=1e-5 * np.abs(ref.forces[0]).max(), rtol=0)
    np.testing.assert_allclose(got.stress, ref.stress, atol=1e-5 * np.abs(ref.stress).max(), rtol=0)


def test_unrolled_monomial_gradient_equals_the_table_driven_sum():
    """The kernels' spelled-out derivative sum for angular order 3 is the generic ``dindex``/``dcoef`` sum."""
    from mlpkit.descriptors.kernels import C_ORDER3, _monomial_gradient3, _monomials

    sf = SymmetryFunctions(SymmetryFunctionSettings(species=("H", "O")))  # default angular order 3
    args = sf.kernel_parameters().args()
    parent, direction, dindex, dcoef = args[2], args[3], args[9], args[10]
    assert parent.shape[0] == C_ORDER3
    rng = np.random.default_rng(0)
    for _ in range(20):
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        mono, adj = np.empty(C_ORDER3), rng.normal(size=C_ORDER3)
        _monomials(u, parent, direction, mono)
        generic = [sum(adj[c] * dcoef[c, d] * mono[dindex[c, d]] for c in range(1, C_ORDER3)) for d in range(3)]
        np.testing.assert_allclose(_monomial_gradient3(adj, mono), generic, rtol=1e-13, atol=1e-14)
