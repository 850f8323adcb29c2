"""Universal potentials (CHGNet from its wheel): the potential contract zero-shot-aligned and fine-tuned, offline
loading by name, reference-energy alignment, fine-tune settings, committees of fine-tunes, save/load."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("chgnet")

import mlpkit
from mlpkit.errors import InputError, UnsupportedSpeciesError
from mlpkit.potentials.registry import create_potential, load_potential
from mlpkit.potentials.universal import CHGNetPotential
from mlpkit.potentials.universal.alignment import fit_offsets
from mlpkit.testing import PotentialContract, labelled_water, water_cluster
from mlpkit.validation.metrics import evaluate

torch.set_num_threads(1)

#: a short fine-tune: every layer, two epochs
SHORT_FINE_TUNE = {"epochs": 2, "batch_size": 5, "progress": False, "valid_fraction": 0.0}


class TestCHGNetAlignedContract(PotentialContract):
    """Zero-shot CHGNet 0.3.0 with reference energies aligned on the data (``epochs=0``: no training)."""

    fit_settings = {"epochs": 0, "progress": False}

    def make_potential(self, train):
        return create_potential("chgnet", train)

    def test_learns_tiny_dataset(self, frames):
        """Zero-shot cannot learn; what it can do: alignment brings GFN2 energies from ~40 eV/atom to meV/atom."""
        pot = self.make_potential(frames[:12])
        raw, _ = evaluate(pot, frames[40:])
        pot.fit(frames[:12], **self.fit_settings)
        aligned, _ = evaluate(pot, frames[40:])
        assert raw["energy_mae_per_atom"] > 1.0, raw  # MP's PBE scale vs GFN2's: tens of eV per atom apart
        assert aligned["energy_mae_per_atom"] < 0.03, aligned
        assert aligned["forces_mae"] == pytest.approx(raw["forces_mae"], rel=1e-12)  # offsets leave forces alone


class TestCHGNetFineTunedContract(PotentialContract):
    """CHGNet 0.3.0 aligned, then fine-tuned (all layers) on GFN2-xTB water."""

    fit_settings = SHORT_FINE_TUNE
    tiny_fit_settings = {
        "epochs": 25,
        "batch_size": 4,
        "learning_rate": 2e-3,
        "lr_final": 1e-4,
        "valid_fraction": 0.0,
        "progress": False,
    }
    tiny_energy_mae = 2e-3  # eV/atom
    tiny_forces_mae = 0.05  # eV/Å (zero-shot: ~0.5 eV/Å against GFN2)

    def make_potential(self, train):
        return create_potential("chgnet", train)


# -- zero-shot, offline, by name ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zero_shot():
    return mlpkit.load("chgnet")


@pytest.fixture(scope="module")
def frames():
    return labelled_water(60)


def test_load_by_name_defaults_and_variants(zero_shot):
    assert isinstance(zero_shot, CHGNetPotential)
    assert zero_shot.hyperparameters["model"] == "0.3.0"
    assert zero_shot.cutoff == 6.0 and len(zero_shot.species) == 94 and zero_shot.species[0] == "H"
    r2scan = load_potential("chgnet:r2scan")
    assert r2scan.hyperparameters["model"] == "r2scan"
    old = mlpkit.load("chgnet:0.2.0")
    water = water_cluster(2)
    energies = [p.predict([water]).energy[0] for p in (zero_shot, r2scan, old)]
    assert len({round(e, 6) for e in energies}) == 3  # three different networks


def test_unknown_model_name_says_what_to_place_where():
    with pytest.raises(InputError, match=r"unknown CHGNet model 'mp-2025'.*0\.3\.0, 0\.2\.0, r2scan.*path"):
        mlpkit.load("chgnet:mp-2025")
    with pytest.raises(InputError, match="unknown chgnet hyperparameter 'dtpye'"):
        CHGNetPotential.from_pretrained(dtpye="float32")


def test_missing_shipped_weights_name_the_file_and_place(monkeypatch, tmp_path):
    from mlpkit.potentials.universal import chgnet_backend

    monkeypatch.setattr(chgnet_backend, "pretrained_dir", lambda: tmp_path)
    with pytest.raises(InputError, match=rf"chgnet_r2scan_transfer_learning_e15f36s161m23\.pth\.tar.*{tmp_path}"):
        mlpkit.load("chgnet:r2scan")


def test_checkpoint_file_path_loads_without_pickle(tmp_path):
    from mlpkit.potentials.universal.chgnet_backend import checkpoint_file

    file = tmp_path / "my.pth.tar"
    shutil.copy(checkpoint_file("0.3.0"), file)
    pot = mlpkit.load(f"chgnet:{file}")
    water = water_cluster(2)
    assert pot.predict([water]).energy[0] == mlpkit.load("chgnet").predict([water]).energy[0]
    evil = tmp_path / "evil.pth.tar"
    torch.save({"model": {"model_args": {}, "state_dict": {}, "x": object()}}, evil)
    with pytest.raises(InputError, match="not a CHGNet checkpoint readable as plain tensors"):
        mlpkit.load(f"chgnet:{evil}")


def test_offline_with_network_off():
    """``mlpkit.load("chgnet")`` and ``"chgnet:r2scan"`` in a process without any network (unshare -n)."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"]).returncode != 0:
        pytest.skip("unshare -n is not permitted here")
    code = (
        "import socket, mlpkit\n"
        "from ase.build import molecule\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 443), timeout=2); print('NETWORK')\n"
        "except OSError:\n"
        "    print('NO-NETWORK')\n"
        "for name in ('chgnet', 'chgnet:r2scan'):\n"
        "    print(name, mlpkit.load(name).predict([molecule('H2O')]).energy[0])\n"
    )
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": ":".join(sys.path)}
    out = subprocess.run(["unshare", "-n", sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "NO-NETWORK" in out.stdout and "chgnet:r2scan" in out.stdout, out.stdout


def test_zero_shot_stress_only_for_periodic_cells(zero_shot):
    """(Forces and stress against finite differences: the contract above; offsets do not touch them.)"""
    box = water_cluster(4, spacing=3.1, seed=2, periodic=True)
    # open structure: no stress; a mixed-pbc cell: a clear error
    assert np.isnan(zero_shot.predict([water_cluster(2)], stress=True).stress).all()
    slab = box.copy()
    slab.pbc = [True, True, False]
    with pytest.raises(InputError, match="fully periodic"):
        zero_shot.predict([slab])


def test_zero_shot_knows_94_elements_and_refuses_others(zero_shot, tmp_path):
    from ase import Atoms

    nacl = Atoms("NaCl", positions=[[0, 0, 0], [2.4, 0, 0]])
    assert np.isfinite(zero_shot.predict([nacl]).energy).all()
    with pytest.raises(UnsupportedSpeciesError, match="Am"):
        zero_shot.predict([Atoms("AmO", positions=[[0, 0, 0], [1.8, 0, 0]])])
    zero_shot.save(tmp_path / "zs")
    again = mlpkit.load(tmp_path / "zs")
    assert again.predict([nacl]).energy[0] == zero_shot.predict([nacl]).energy[0]
    assert json.loads((tmp_path / "zs" / "model.json").read_text())["fine_tune"] is None


# -- alignment ---------------------------------------------------------------------------------------------


def test_alignment_recovers_per_element_offsets():
    """Two compositions: the least squares on composition returns the offsets exactly."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(0)
    images, model = [], []
    for k in range(6):
        n_h, n_o = 2 + k % 2, 1 + k // 3
        a = Atoms(f"H{n_h}O{n_o}", positions=rng.normal(size=(n_h + n_o, 3)))
        e_model = rng.normal()
        energy = e_model + n_h * (-13.2) + n_o * (-2035.4)
        a.calc = SinglePointCalculator(a, energy=energy, forces=np.zeros((len(a), 3)))
        images.append(a)
        model.append(e_model)
    offsets = fit_offsets(images, np.array(model))
    assert offsets == pytest.approx({"H": -13.2, "O": -2035.4}, abs=1e-8)


def test_aligned_model_refuses_elements_it_was_not_aligned_on(frames):
    pot = create_potential("chgnet", frames[:10])
    pot.fit(frames[:10], epochs=0)
    assert pot.species == ("H", "O")
    from ase import Atoms

    with pytest.raises(UnsupportedSpeciesError, match="C"):
        pot.predict([Atoms("CO", positions=[[0, 0, 0], [1.1, 0, 0]])])


# -- fine-tuning -------------------------------------------------------------------------------------------


def test_fine_tune_layers_train_only_what_they_say(frames):
    pot = create_potential("chgnet", frames[:8])
    before = {k: v.clone() for k, v in pot.module.state_dict().items()}
    pot.fit(frames[:8], layers="head", **SHORT_FINE_TUNE)
    after = pot.module.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("mlp.", "readout_norm.")) for k in changed), changed
    assert not any(p.requires_grad for p in pot.module.parameters())  # frozen again for prediction
    with pytest.raises(InputError, match="fit setting 'layers'"):
        pot.fit(frames[:8], layers="first")
    with pytest.raises(InputError, match="unknown chgnet fit setting 'lr'"):
        pot.fit(frames[:8], lr=1e-3)


def test_fine_tune_early_stopping_and_saved_settings(frames, tmp_path):
    pot = create_potential("chgnet", frames[:12])
    history = pot.fit(frames[:12], valid=frames[50:54], epochs=4, patience=1, keep="best", progress=False, seed=3)
    assert len(history.epochs) <= 4 and "valid_forces_mae" in history.epochs[0]
    pot.save(tmp_path / "ft")
    meta = json.loads((tmp_path / "ft" / "model.json").read_text())
    assert meta["base_model"] == "0.3.0" and meta["fine_tune"]["layers"] == "all" and meta["fine_tune"]["seed"] == 3
    assert set(meta["offsets"]) == {"H", "O"}
    loaded = mlpkit.load(tmp_path / "ft")
    assert loaded.module.state_dict()["mlp.layers.0.weight"].dtype == torch.float64
    np.testing.assert_array_equal(loaded.predict(frames[40:44]).energy, pot.predict(frames[40:44]).energy)


def test_committee_of_fine_tunes_has_a_spread(frames, tmp_path):
    from mlpkit.uncertainty.committee import Committee

    members = []
    for seed in (0, 1):
        m = create_potential("chgnet", frames[:10])
        m.fit(frames[:10], seed=seed, epochs=2, batch_size=3, progress=False, valid_fraction=0.0)
        members.append(m)
    committee = Committee(members)
    pred = committee.predict(frames[40:43])
    dev = pred.max_force_deviation()
    assert dev is not None and (dev > 1e-5).all(), dev
    committee.save(tmp_path / "c")
    again = mlpkit.load(tmp_path / "c")
    np.testing.assert_array_equal(again.predict(frames[40:43]).energy, pred.energy)
    atoms = frames[41].copy()
    atoms.calc = committee.calculator()
    assert atoms.calc.get_property("max_force_std", atoms) > 0


def test_killed_fine_tune_resumes_to_the_same_weights(frames, tmp_path):
    """A fine-tune stopped after epoch 2 of 4 and started again from a fresh pretrained model ends where an
    uninterrupted one does (the checkpoint belongs to the same data, alignment and starting weights)."""
    settings = {"epochs": 4, "batch_size": 4, "progress": False, "valid_fraction": 0.0, "checkpoint_every": 1}
    whole = create_potential("chgnet", frames[:8])
    whole.fit(frames[:8], **settings)

    def kill(epoch, record):
        if epoch == 2:
            raise KeyboardInterrupt

    first = create_potential("chgnet", frames[:8])
    with pytest.raises(KeyboardInterrupt):
        first.fit(frames[:8], checkpoint_dir=tmp_path / "ckpt", callback=kill, **settings)
    again = create_potential("chgnet", frames[:8])
    history = again.fit(frames[:8], checkpoint_dir=tmp_path / "ckpt", **settings)
    assert [r["epoch"] for r in history.epochs] == [1, 2, 3, 4]
    np.testing.assert_allclose(
        again.predict(frames[40:42]).energy, whole.predict(frames[40:42]).energy, rtol=0, atol=1e-9
    )


def test_stress_weight_fits_the_stress_of_crystal_labels():
    """Energies and forces alone leave a crystal's stress where the pretrained model had it; ``stress_weight``
    (GPa²) adds the stress MSE of periodic labels to the loss. EMT copper cells, head-only, 3 epochs."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(0)
    frames = []
    for i in range(6):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.set_cell(atoms.cell * (1 + rng.uniform(-0.03, 0.03)), scale_atoms=True)
        atoms.rattle(0.05, seed=i)
        atoms.calc = EMT()
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(), "stress": atoms.get_stress()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    reference = np.array([a.get_stress() for a in frames])
    errors = {}
    for weight in (0.0, 1.0):
        pot = create_potential("chgnet", frames)
        pot.fit(frames, epochs=3, layers="head", batch_size=3, valid_fraction=0.0, stress_weight=weight, progress=False)
        assert pot.fine_tune["stress_weight"] == weight
        errors[weight] = np.abs(pot.predict(frames, stress=True).stress - reference).mean() * 160.2  # GPa
    assert errors[1.0] < 0.5 * errors[0.0], errors
