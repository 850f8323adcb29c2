"""The checks every potential family must pass, as a base class each family's test module subclasses.

Ships with mlpkit so that every family, built-in or third-party, runs the same checks (pytest needed).
Usage (see tests/test_bpnn.py)::

    from mlpkit.testing import PotentialContract


    class TestMyFamily(PotentialContract):
        fit_settings = {"epochs": 20, "progress": False}     # short fit used by most checks
        tiny_fit_settings = {...}                            # fit that must reach a low error on tiny data

        def make_potential(self, train):                     # an untrained float64 potential for ``train``
            return MyPotential(...)

Checks: forces = -dE/dx (finite differences), stress = (1/V) dE/dε (finite strain, periodic cell), invariance
to rotation, translation and permutation of like atoms, energy and force continuity as a neighbour crosses
the cutoff, save → load identical predictions, a clear UnsupportedSpeciesError for an unknown element, and a
low training error on a tiny dataset. The data are GFN2-xTB-labelled water frames made on the spot
(:func:`mlpkit.testing.data.labelled_water`).
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from mlpkit.testing.data import labelled_water, water_cluster


class PotentialContract:
    """Base class of the shared potential tests (see module docstring)."""

    #: settings of the short fit that gives the potential realistic scales for the derivative checks
    fit_settings: dict = {"epochs": 5, "progress": False}
    #: settings of the fit that must reach a low error on the tiny dataset
    tiny_fit_settings: dict = {"epochs": 200, "progress": False}
    #: bars for the tiny-data fit (eV/atom, eV/Å)
    tiny_energy_mae = 1e-3
    tiny_forces_mae = 0.05
    #: relative tolerance of derivative checks (float64 models)
    fd_rtol = 1e-6

    def make_potential(self, train: list[Atoms]):
        raise NotImplementedError

    # -- fixtures --------------------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    def frames(self) -> list[Atoms]:
        return labelled_water(60)

    @pytest.fixture(scope="class")
    def potential(self, frames):
        pot = self.make_potential(frames[:20])
        pot.fit(frames[:20], **self.fit_settings)
        return pot

    # -- helpers ---------------------------------------------------------------------------------------

    @staticmethod
    def _energy(pot, atoms: Atoms) -> float:
        return float(pot.predict([atoms]).energy[0])

    def _check_forces_fd(self, pot, atoms: Atoms, eps: float = 1e-4) -> None:
        pred = pot.predict([atoms])
        forces = pred.forces[0]
        displaced = []
        for step in (eps, eps / 2):
            for a in range(len(atoms)):
                for d in range(3):
                    for sign in (1, -1):
                        moved = atoms.copy()
                        moved.positions[a, d] += sign * step
                        displaced.append(moved)
        energies = pot.predict(displaced).energy.reshape(2, len(atoms), 3, 2)  # one batched call
        central = -(energies[..., 0] - energies[..., 1]) / (2 * np.array([eps, eps / 2])[:, None, None])
        # Richardson extrapolation, error O(eps⁴) instead of O(eps²): a briefly trained model on a cluster it never
        # saw has forces of ~10³ eV/Å, whose plain central difference at eps 1e-4 Å is off by ~1e-3 relative
        numeric = (4 * central[1] - central[0]) / 3
        scale = max(1.0, float(np.abs(forces).max()))
        np.testing.assert_allclose(forces, numeric, atol=1e-5 * scale, rtol=0)

    # -- the checks ------------------------------------------------------------------------------------

    def test_forces_are_minus_energy_gradient(self, potential, frames):
        self._check_forces_fd(potential, frames[30])
        self._check_forces_fd(potential, water_cluster(3, spacing=2.6, seed=1))

    def test_forces_and_stress_periodic(self, potential):
        atoms = water_cluster(4, spacing=3.1, seed=2, periodic=True)
        self._check_forces_fd(potential, atoms)
        pred = potential.predict([atoms], stress=True)
        stress = pred.stress[0]
        eps = 1e-5
        cell0, vol = atoms.cell[:].copy(), atoms.get_volume()
        strained = []
        for i in range(3):
            for j in range(3):
                for sign in (1, -1):
                    strain = np.eye(3)
                    strain[i, j] += sign * eps
                    s = atoms.copy()
                    s.set_cell(cell0 @ strain, scale_atoms=True)
                    strained.append(s)
        energies = potential.predict(strained).energy.reshape(3, 3, 2)
        numeric = (energies[..., 0] - energies[..., 1]) / (2 * eps * vol)
        numeric = 0.5 * (numeric + numeric.T)
        voigt = numeric[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        scale = max(1e-3, float(np.abs(voigt).max()))
        np.testing.assert_allclose(stress, voigt, atol=1e-5 * scale, rtol=0)
        # and through the ASE calculator
        atoms.calc = potential.calculator()
        np.testing.assert_allclose(atoms.get_stress(), stress, atol=1e-12 * scale + 1e-14)

    def test_stress_not_given_for_open_structures(self, potential, frames):
        from ase.calculators.calculator import PropertyNotImplementedError

        atoms = frames[0].copy()
        atoms.calc = potential.calculator()
        with pytest.raises(PropertyNotImplementedError):
            atoms.get_stress()

    def test_rotation_translation_permutation_invariance(self, potential):
        from scipy.spatial.transform import Rotation

        atoms = water_cluster(3, spacing=2.6, seed=3)
        ref = potential.predict([atoms])
        e0, f0 = ref.energy[0], ref.forces[0]
        tol = 1e-10 * max(1.0, abs(e0))
        rot = Rotation.random(random_state=7).as_matrix()
        moved = atoms.copy()
        moved.positions = atoms.positions @ rot.T + np.array([3.3, -1.7, 12.5])
        p = potential.predict([moved])
        assert abs(p.energy[0] - e0) < tol
        np.testing.assert_allclose(p.forces[0], f0 @ rot.T, atol=1e-9 * max(1.0, np.abs(f0).max()))
        # permutation of like atoms: swap hydrogens across molecules and reorder oxygens
        symbols = np.array(atoms.get_chemical_symbols())
        perm = np.concatenate([np.flatnonzero(symbols == "O")[::-1], np.flatnonzero(symbols == "H")[::-1]])
        permuted = atoms[perm]
        p = potential.predict([permuted])
        assert abs(p.energy[0] - e0) < tol
        np.testing.assert_allclose(p.forces[0], f0[perm], atol=1e-9 * max(1.0, np.abs(f0).max()))
        # periodic: translation and wrapping change nothing
        box = water_cluster(4, spacing=3.1, seed=4, periodic=True)
        e_box = potential.predict([box]).energy[0]
        shifted = box.copy()
        shifted.positions += np.array([1.3, 7.1, -2.2])
        shifted.wrap()
        assert abs(potential.predict([shifted]).energy[0] - e_box) < 1e-10 * max(1.0, abs(e_box))

    def test_energy_continuous_across_cutoff(self, potential):
        """A lone atom approaching a molecule from beyond the cutoff: energy and forces change smoothly."""
        rc = float(potential.cutoff)
        base = molecule("H2O")
        direction = np.array([0.3, 0.2, 1.0]) / np.linalg.norm([0.3, 0.2, 1.0])
        # distance of the newcomer to the nearest atom of the molecule crosses rc
        distances = rc + np.linspace(-2e-3, 2e-3, 41)
        structures = []
        for d in distances:
            far = base.copy()
            o = far.positions[0]
            proj = (far.positions - o) @ direction
            far.append("H")
            far.positions[-1] = o + direction * (proj.max() + d)
            # make sure the nearest atom is at distance d
            dmin = np.linalg.norm(far.positions[:-1] - far.positions[-1], axis=1).min()
            far.positions[-1] += direction * (d - dmin)
            structures.append(far)
        pred = potential.predict(structures)
        energies, forces = pred.energy, pred.forces
        steps = np.abs(np.diff(energies))
        # no jump: the largest step is comparable to the others (a discontinuity would stand out) and tiny
        assert steps.max() < 1e-6, steps.max()
        far_field = potential.predict([base]).energy[0] + potential.predict([Atoms("H")]).energy[0]
        assert abs(energies[-1] - far_field) < 1e-9  # beyond the cutoff: no interaction at all
        fjump = np.abs(np.diff(np.array(forces), axis=0)).max()
        assert fjump < 1e-3, fjump

    def test_save_load_identical(self, potential, frames, tmp_path):
        import mlpkit

        potential.save(tmp_path / "model")
        loaded = mlpkit.load(tmp_path / "model")
        assert type(loaded) is type(potential)
        assert loaded.species == potential.species and loaded.cutoff == potential.cutoff
        images = [*frames[40:43], water_cluster(4, spacing=3.1, seed=5, periodic=True)]
        a = potential.predict(images, stress=False)
        b = loaded.predict(images, stress=False)
        np.testing.assert_array_equal(a.energy, b.energy)
        for fa, fb in zip(a.forces, b.forces, strict=True):
            np.testing.assert_array_equal(fa, fb)
        meta = loaded.metadata
        assert meta.get("method") == frames[0].info["method"]
        assert meta.get("training_set_hash")
        import json

        model_json = json.loads((tmp_path / "model" / "model.json").read_text())
        assert model_json["family"] == potential.family
        assert model_json["mlpkit_version"]

    def test_unknown_element_is_a_clear_error(self, potential, frames):
        from mlpkit.errors import UnsupportedSpeciesError

        atoms = frames[0].copy()
        atoms[0].symbol = "Cl"
        with pytest.raises(UnsupportedSpeciesError, match="Cl"):
            potential.predict([atoms])
        atoms.calc = potential.calculator()
        with pytest.raises(UnsupportedSpeciesError):
            atoms.get_potential_energy()

    def test_learns_tiny_dataset(self, frames):
        from mlpkit.validation.metrics import evaluate

        train = frames[:12]
        pot = self.make_potential(train)
        pot.fit(train, **self.tiny_fit_settings)
        metrics, _ = evaluate(pot, train)
        assert metrics["energy_mae_per_atom"] < self.tiny_energy_mae, metrics
        assert metrics["forces_mae"] < self.tiny_forces_mae, metrics
