"""Neighbour lists and symmetry functions: against brute force, half vs full lists, Verlet reuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

from mlpkit.descriptors import (
    SymmetryFunctions,
    SymmetryFunctionSettings,
    VerletList,
    collate,
    graph_arrays,
    neighbor_list,
    species_index,
)
from mlpkit.errors import InputError, UnsupportedSpeciesError
from mlpkit.testing import water_cluster

SPECIES = ("H", "O")


def _pairs_ase(atoms: Atoms, cutoff: float) -> list[tuple[int, int, float]]:
    from ase.neighborlist import neighbor_list as ase_nl

    i, j, d = ase_nl("ijd", atoms, cutoff)
    return sorted((int(a), int(b), round(float(x), 8)) for a, b, x in zip(i, j, d, strict=True))


@pytest.mark.parametrize("pbc", [False, True, (True, False, True)])
def test_neighbor_list_matches_ase(pbc):
    atoms = water_cluster(8, spacing=2.8, seed=1, periodic=True)
    atoms.pbc = pbc
    nl = neighbor_list(atoms, 3.7, full=True)
    vec = atoms.positions[nl.j] - atoms.positions[nl.i] + nl.shifts @ atoms.cell[:]
    ours = sorted(
        (int(a), int(b), round(float(x), 8)) for a, b, x in zip(nl.i, nl.j, np.linalg.norm(vec, axis=1), strict=True)
    )
    assert ours == _pairs_ase(atoms, 3.7)
    half = neighbor_list(atoms, 3.7)
    assert half.half and 2 * len(half) == len(nl)


def _features(atoms, settings, full=False, dtype=torch.float64):
    sf = SymmetryFunctions(settings).to(dtype)
    g = graph_arrays(atoms, settings.species, settings.cutoff, nlist=neighbor_list(atoms, settings.cutoff, full=full))
    b = collate([g], dtype)
    return sf(b.vectors, b.centers, b.neighbors, b.species, half=b.half), sf


def _brute_force(atoms: Atoms, settings: SymmetryFunctionSettings, sf: SymmetryFunctions) -> np.ndarray:
    """Python loops over neighbours and neighbour pairs: the definition of G2 and G5."""
    from ase.neighborlist import neighbor_list as ase_nl

    i_all, j_all, d_all, dvec = ase_nl("ijdD", atoms, settings.cutoff)
    S = len(settings.species)
    idx = species_index(atoms, settings.species)
    mu, eta, mu_a, eta_a = sf.mu.numpy(), sf.eta, sf.mu_a.numpy(), sf.eta_a
    L = settings.angular_order

    def fc(r, rc):
        return 0.5 * (np.cos(np.pi * r / rc) + 1) * (r < rc)

    out = []
    for i in range(len(atoms)):
        sel = i_all == i
        js, ds, vs = j_all[sel], d_all[sel], dvec[sel]
        g2 = np.zeros((S, len(mu)))
        for j, d in zip(js, ds, strict=True):
            g2[idx[j]] += np.exp(-eta * (d - mu) ** 2) * fc(d, settings.cutoff)
        g5 = []
        for a in range(S):
            for b in range(a, S):
                block = np.zeros((len(mu_a), L + 1))
                for j, dj, vj in zip(js, ds, vs, strict=True):
                    for k, dk, vk in zip(js, ds, vs, strict=True):
                        if idx[j] != a or idx[k] != b:
                            continue
                        gj = np.exp(-eta_a * (dj - mu_a) ** 2) * fc(dj, settings.angular_cutoff)
                        gk = np.exp(-eta_a * (dk - mu_a) ** 2) * fc(dk, settings.angular_cutoff)
                        cos = vj @ vk / (dj * dk)
                        block += (gj * gk)[:, None] * cos ** np.arange(L + 1)[None, :]
                g5.append(block.ravel())
        out.append(np.concatenate([g2.ravel(), *g5]))
    return np.array(out)


@pytest.mark.parametrize(("periodic", "order"), [(False, 3), (True, 3), (False, 5)])
def test_factorised_angular_functions_equal_the_triple_sum(periodic, order):
    atoms = water_cluster(4, spacing=2.7, seed=2, periodic=periodic)
    settings = SymmetryFunctionSettings(
        SPECIES, cutoff=3.6, n_radial=5, angular_cutoff=3.0, n_angular=3, angular_order=order
    )
    g, sf = _features(atoms, settings)
    np.testing.assert_allclose(g.numpy(), _brute_force(atoms, settings, sf), rtol=1e-10, atol=1e-12)


def test_half_and_full_lists_agree_and_are_invariant():
    atoms = water_cluster(8, spacing=2.8, seed=3, periodic=True)
    settings = SymmetryFunctionSettings(SPECIES, cutoff=4.0, n_radial=8, n_angular=4, angular_order=3)
    g_half, _ = _features(atoms, settings)
    g_full, _ = _features(atoms, settings, full=True)
    np.testing.assert_allclose(g_half.numpy(), g_full.numpy(), rtol=1e-12, atol=1e-12)
    from scipy.spatial.transform import Rotation

    rot = Rotation.random(random_state=3).as_matrix()
    turned = atoms.copy()
    turned.set_cell(atoms.cell[:] @ rot.T, scale_atoms=False)
    turned.positions = atoms.positions @ rot.T
    g_rot, _ = _features(turned, settings)
    np.testing.assert_allclose(g_rot.numpy(), g_half.numpy(), rtol=1e-10, atol=1e-12)


def test_feature_count_and_names():
    settings = SymmetryFunctionSettings(("C", "H", "O"), cutoff=5.0, n_radial=7, n_angular=3, angular_order=2)
    sf = SymmetryFunctions(settings)
    assert sf.n_features == 3 * 7 + 6 * 3 * 3
    assert len(sf.feature_names()) == sf.n_features
    assert settings.angular_cutoff == 4.0  # default: min(cutoff, 4 Å)
    with pytest.raises(InputError):
        SymmetryFunctionSettings(SPECIES, cutoff=3.0, angular_cutoff=3.5)
    with pytest.raises(InputError):
        SymmetryFunctionSettings(("H", "Xx"))


def test_unknown_species_is_refused():
    with pytest.raises(UnsupportedSpeciesError, match="N"):
        species_index(Atoms("NH3", positions=np.eye(4)[:, :3] * 1.5), SPECIES)


def test_verlet_list_rebuilds_only_when_needed():
    atoms = water_cluster(27, spacing=3.0, seed=4, periodic=True)
    vl = VerletList(cutoff=3.0, skin=0.6)
    first = vl.get(atoms)
    rng = np.random.default_rng(0)
    atoms.positions += rng.uniform(-0.17, 0.17, atoms.positions.shape)  # |move| <= 0.17*sqrt(3) < 0.3
    second = vl.get(atoms)
    assert vl.n_builds == 1 and second is first
    # the kept list holds every pair within the cutoff
    vec = atoms.positions[second.j] - atoms.positions[second.i] + second.shifts @ atoms.cell[:]
    kept = np.sort(np.linalg.norm(vec, axis=1))
    kept = kept[kept < 3.0]
    fresh = neighbor_list(atoms, 3.0)
    assert len(kept) == len(fresh)
    atoms.positions[5] += [0.65, 0.0, 0.0]  # now more than skin/2 from where it was at the build
    vl.get(atoms)
    assert vl.n_builds == 2
    atoms.set_cell(atoms.cell[:] * 1.01, scale_atoms=True)
    vl.get(atoms)
    assert vl.n_builds == 3


def test_single_atom_and_empty_cases():
    settings = SymmetryFunctionSettings(SPECIES, cutoff=3.0, n_radial=4, n_angular=2)
    g, _ = _features(Atoms("O", positions=[[0, 0, 0]]), settings)
    assert g.shape == (1, SymmetryFunctions(settings).n_features) and float(g.abs().max()) == 0.0
    # a periodic single atom sees its own images
    crystal = Atoms("O", positions=[[0, 0, 0]], cell=np.eye(3) * 2.5, pbc=True)
    g, _ = _features(crystal, settings)
    assert float(g[0, 4:8].sum()) > 0  # the O-O radial block
