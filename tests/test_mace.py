"""MACE family: the shared potential contract on a tiny model, safe loading after ``import mace``, storage, the
trusted importer of pickled MACE models, settings errors. Skipped when mace-torch is not installed."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

pytest.importorskip("mace")

import torch

from mlpkit.errors import InputError
from mlpkit.potentials.mace import MACEPotential
from mlpkit.potentials.registry import create_potential
from mlpkit.testing import PotentialContract, labelled_water, water_cluster

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # TorchScript notes from e3nn at construction

#: a tiny model: the contract runs in seconds; cutoff reaching between the molecules of the test clusters
TINY = {
    "channels": 8,
    "max_L": 1,
    "r_max": 3.5,
    "num_interactions": 2,
    "correlation": 2,
    "max_ell": 2,
    "radial_mlp": [16],
    "readout_hidden": 8,
    "dtype": "float64",
    "device": "cpu",
}


class TestMACEContract(PotentialContract):
    fit_settings = {"epochs": 3, "progress": False, "batch_size": 10}
    tiny_fit_settings = {"epochs": 150, "progress": False, "valid_fraction": 0.0, "batch_size": 4}
    tiny_energy_mae = 5e-4  # eV/atom
    tiny_forces_mae = 0.03  # eV/Å

    def make_potential(self, train):
        return create_potential("mace", train, **TINY)


@pytest.fixture(scope="module")
def frames():
    return labelled_water(30)


@pytest.fixture(scope="module")
def fitted(frames):
    pot = create_potential("mace", frames[:10], **TINY)
    pot.fit(frames[:10], epochs=2, progress=False)
    return pot


class _Payload:
    """Unpickling this creates ``marker``: what a malicious pickle could do instead (anything, as the user)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _malicious_weights(path, marker):
    with open(path, "wb") as fh:  # torch.save of a dict holding the payload: a real torch checkpoint format
        torch.save({"model": _Payload(str(marker))}, fh)


def test_malicious_pickle_refused_after_importing_mace(tmp_path, fitted):
    import mace  # noqa: F401

    import mlpkit
    from mlpkit.training import Trainer

    # the premise: importing mace turned torch.load's unsafe default on for the whole process
    assert os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD") == "1"
    fitted.save(tmp_path / "model")
    marker = tmp_path / "pwned"
    _malicious_weights(tmp_path / "model" / "weights.pt", marker)
    with pytest.raises(pickle.UnpicklingError):
        mlpkit.load(tmp_path / "model")
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):
        MACEPotential.load(tmp_path / "model")
    assert not marker.exists()
    # a poisoned training checkpoint is not resumed (the run starts over) and runs nothing
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    _malicious_weights(ckpt / "checkpoint.pt", marker)
    trainer = Trainer(fitted.module, lambda items, training: None, [0], None, {"checkpoint_dir": str(ckpt)})
    assert trainer._load_checkpoint() is None
    assert not marker.exists()
    # the importer of pickled MACE files refuses before reading anything unless trusted
    _malicious_weights(tmp_path / "evil.model", marker)
    with pytest.raises(InputError, match="trust_pickle=True"):
        MACEPotential.import_foreign(tmp_path / "evil.model")
    assert not marker.exists()
    # control: the same file through torch.load's default does run the payload in this process (the test can fail)
    control = tmp_path / "control"
    _malicious_weights(tmp_path / "control.pt", control)
    torch.load(tmp_path / "control.pt")
    assert control.exists()


def test_save_load_bit_exact_float32_and_plain_tensors(tmp_path, fitted, frames):
    fitted.save(tmp_path / "m64")
    f32 = MACEPotential.load(tmp_path / "m64", dtype="float32")
    f32.save(tmp_path / "m32")
    again = MACEPotential.load(tmp_path / "m32")
    assert again.dtype == torch.float32
    a, b = f32.predict(frames[20:25], stress=False), again.predict(frames[20:25])
    np.testing.assert_array_equal(a.energy, b.energy)
    for fa, fb in zip(a.forces, b.forces, strict=True):
        np.testing.assert_array_equal(fa, fb)
    # float32 close to the float64 model it came from
    ref = fitted.predict(frames[20:25])
    np.testing.assert_allclose(a.energy, ref.energy, atol=1e-3)
    # the weights file is plain tensors, readable with weights_only=True; hyperparameters in model.json
    state = torch.load(tmp_path / "m64" / "weights.pt", weights_only=True)
    assert set(state) == {"model", "reference_energies"}
    assert all(isinstance(v, torch.Tensor) for v in state["model"].values())
    meta = json.loads((tmp_path / "m64" / "model.json").read_text())
    assert meta["hyperparameters"]["channels"] == 8
    assert meta["hyperparameters"]["avg_num_neighbors"] == fitted.hyperparameters["avg_num_neighbors"]


def test_data_derived_normalisation(frames):
    pot = create_potential("mace", frames[:10], **TINY)
    # an isolated water within 3.5 Å: every atom sees the other two
    assert pot.hyperparameters["avg_num_neighbors"] == pytest.approx(2.0)
    pot._fit_normalisation(frames[:10])
    forces = np.concatenate([a.get_forces().ravel() for a in frames[:10]])
    assert float(pot.module.scale_shift.scale) == pytest.approx(np.sqrt(np.mean(forces**2)))
    # one composition: the reference energies reproduce the mean energy, the shift takes no offset
    energies = np.array([a.get_potential_energy() for a in frames[:10]])
    assert pot.reference_energy(frames[:1])[0] == pytest.approx(energies.mean(), abs=1e-8)
    # the shift cancels the fresh network's mean output: the untrained model has no mean energy error
    pred = pot.predict(frames[:10]).energy
    assert abs(np.mean(pred - energies)) < 1e-8


def test_checkpoint_resume_gives_same_weights(tmp_path, frames):
    train = frames[:8]
    settings = {"epochs": 4, "progress": False, "valid_fraction": 0.0, "checkpoint_every": 1, "batch_size": 4}
    full = create_potential("mace", train, **TINY)
    full.fit(train, **settings)

    def stop(epoch, record):
        if epoch == 2:
            raise KeyboardInterrupt

    broken = create_potential("mace", train, **TINY)
    with pytest.raises(KeyboardInterrupt):
        broken.fit(train, checkpoint_dir=tmp_path, callback=stop, **settings)
    resumed = create_potential("mace", train, **TINY)
    resumed.fit(train, checkpoint_dir=tmp_path, **settings)
    for k, v in full.module.state_dict().items():
        torch.testing.assert_close(resumed.module.state_dict()[k], v, rtol=0, atol=0)


def test_import_foreign_needs_trust_and_converts(tmp_path, fitted, frames):
    # a MACE model as mace-torch users have it: a pickled module, with its own per-element energies
    foreign = MACEPotential(["H", "O"], **TINY).module
    with torch.no_grad():
        e0 = foreign.atomic_energies_fn.atomic_energies
        e0.copy_(torch.tensor([-13.6, -2041.0], dtype=torch.float64).reshape(e0.shape))
        foreign.scale_shift.scale.fill_(0.7)
    torch.save(foreign, tmp_path / "user.model")
    with pytest.raises(InputError, match="executes any code"):
        MACEPotential.import_foreign(tmp_path / "user.model")
    pot = MACEPotential.import_foreign(tmp_path / "user.model", trust_pickle=True, device="cpu")
    np.testing.assert_allclose(pot.reference_energies, [-13.6, -2041.0])
    assert pot.hyperparameters["channels"] == 8 and pot.hyperparameters["r_max"] == 3.5
    pot.save(tmp_path / "converted")
    loaded = MACEPotential.load(tmp_path / "converted")
    from mlpkit.potentials.mace.model import collate

    graphs = [loaded.graph(a) for a in frames[:3]]
    out = foreign(collate(graphs, 2, torch.float64, torch.device("cpu")), compute_force=True)
    np.testing.assert_allclose(loaded.predict(frames[:3]).energy, out["energy"].detach().numpy(), rtol=1e-12)


def test_settings_errors(frames):
    with pytest.raises(InputError, match=r"unknown mace hyperparameter 'chanels' \(did you mean channels\?\)"):
        create_potential("mace", frames[:3], chanels=16)
    with pytest.raises(InputError, match="max_L"):
        create_potential("mace", frames[:3], max_L=7)
    with pytest.raises(InputError, match="r_max"):
        create_potential("mace", frames[:3], r_max=-1.0)
    with pytest.raises(InputError, match="device"):
        create_potential("mace", frames[:3], device="tpu")
    with pytest.raises(InputError, match="interaction"):
        create_potential("mace", frames[:3], interaction="NoSuchBlock")
    pot = create_potential("mace", frames[:3], **TINY)
    with pytest.raises(InputError, match="unknown mace fit setting 'epoch'"):
        pot.fit(frames[:3], epoch=3)
    with pytest.raises(InputError, match="learning_rate"):
        pot.fit(frames[:3], learning_rate=0.0)


def test_periodic_box_and_cuda_default(frames):
    pot = create_potential("mace", frames[:3], **{**TINY, "device": "auto"})
    assert pot.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    box = water_cluster(8, spacing=3.1, seed=0, periodic=True)
    pred = pot.predict([box, frames[0]], stress=True)
    assert np.isfinite(pred.stress[0]).all() and np.isnan(pred.stress[1]).all()
    # forces of a periodic box sum to zero (translation invariance)
    np.testing.assert_allclose(pred.forces[0].sum(0), 0, atol=1e-10)


@pytest.mark.slow
def test_import_of_a_model_written_by_mace_run_train(tmp_path):
    """A .model file from mace-torch's own CLI converts and gives its calculator's energies and forces."""
    import shutil
    import subprocess

    from ase.io import write
    from mace.calculators import MACECalculator

    if shutil.which("mace_run_train") is None:
        pytest.skip("mace_run_train not on PATH")
    frames = labelled_water(10)
    write(tmp_path / "train.extxyz", frames)
    args = [
        "mace_run_train", "--name=tiny", f"--train_file={tmp_path / 'train.extxyz'}", "--valid_fraction=0.2",
        "--energy_key=energy", "--forces_key=forces", "--E0s=average", "--model=MACE", "--num_channels=8",
        "--max_L=1", "--r_max=4.0", "--correlation=2", "--max_num_epochs=1", "--batch_size=4", "--device=cpu",
        "--default_dtype=float64", "--seed=1",
    ]  # fmt: skip
    subprocess.run(args, cwd=tmp_path, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    pot = MACEPotential.import_foreign(tmp_path / "tiny.model", trust_pickle=True, device="cpu")
    calc = MACECalculator(model_paths=str(tmp_path / "tiny.model"), device="cpu", default_dtype="float64")
    pred = pot.predict(frames[:3])
    for k, atoms in enumerate(frames[:3]):
        atoms.calc = calc
        assert abs(pred.energy[k] - atoms.get_potential_energy()) < 1e-8
        np.testing.assert_allclose(pred.forces[k], atoms.get_forces(), atol=1e-10)


def test_descriptors_are_invariant_scalars(fitted):
    from scipy.spatial.transform import Rotation

    box = water_cluster(3, spacing=2.6, seed=3)
    feats = fitted.descriptors([box])[0]
    # scalars of both layers: 8 channels each (layer 1: 8x0e of 8x0e+8x1o; last layer: 8x0e)
    assert feats.shape == (len(box), 16)
    moved = box.copy()
    moved.positions = box.positions @ Rotation.random(random_state=1).as_matrix().T + 2.0
    np.testing.assert_allclose(fitted.descriptors([moved])[0], feats, atol=1e-10)
    assert np.abs(feats).max() > 1e-3  # not trivially zero


def test_committee_of_mace_members(tmp_path, frames):
    import mlpkit
    from mlpkit.uncertainty.model_spec import train_committee

    committee = train_committee(
        frames[:6], family="mace", n_members=2, hyperparameters=TINY, epochs=2, progress=False, valid_fraction=0.0
    )
    pred = committee.predict(frames[20:22])
    assert pred.forces_std is not None and (pred.score() > 0).all()  # members differ (init seed, bootstrap)
    committee.save(tmp_path / "committee")
    again = mlpkit.load(tmp_path / "committee").predict(frames[20:22])
    np.testing.assert_array_equal(again.energy, pred.energy)
