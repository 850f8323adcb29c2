"""The trainer: seeds reproduce, a killed run resumes to the same result, early stopping, warm start, loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator

from mlpkit.errors import InputError
from mlpkit.potentials.registry import create_potential
from mlpkit.training import CHECKPOINT_FILE, energy_force_loss, summarize

SMALL = {"hidden": (16, 16), "n_radial": 8, "n_angular": 3}


def _weights(pot) -> np.ndarray:
    return torch.cat([p.detach().flatten() for p in pot.module.parameters()]).numpy().copy()


class _Kill(Exception):
    pass


def test_loss_values_by_hand():
    e = torch.tensor([1.0, 2.0])
    e_ref = torch.tensor([0.0, 0.0])
    n = torch.tensor([2, 4])
    f = torch.zeros(6, 3)
    f_ref = torch.ones(6, 3) * 0.5
    loss, stats = energy_force_loss(e, e_ref, n, f, f_ref, force_weight=2.0)
    # energy per atom errors 0.5, 0.5 -> mse 0.25; force mse 0.25; 0.25 + 2 * 0.25
    assert float(loss) == pytest.approx(0.75)
    agg = summarize([stats, stats], 2.0)
    assert agg["loss"] == pytest.approx(0.75)
    assert agg["energy_mae"] == pytest.approx(0.5) and agg["forces_rmse"] == pytest.approx(0.5)


def test_same_seed_same_model_other_seed_differs(water_frames):
    train = water_frames[:10]
    settings = {"epochs": 4, "progress": False, "batch_size": 3}
    a = create_potential("bpnn", train, **SMALL)
    a.fit(train, seed=3, **settings)
    b = create_potential("bpnn", train, **SMALL)
    b.fit(train, seed=3, **settings)
    c = create_potential("bpnn", train, **SMALL)
    c.fit(train, seed=4, **settings)
    np.testing.assert_array_equal(_weights(a), _weights(b))
    assert not np.allclose(_weights(a), _weights(c))


def test_killed_run_resumes_to_the_same_weights(water_frames, tmp_path):
    train = water_frames[:10]
    settings = {"epochs": 8, "progress": False, "batch_size": 3, "checkpoint_every": 2, "seed": 1}
    ref = create_potential("bpnn", train, **SMALL)
    ref_hist = ref.fit(train, **settings)

    def kill_at_5(epoch, record):
        if epoch == 5:
            raise _Kill

    ckpt = tmp_path / "ckpt"
    pot = create_potential("bpnn", train, **SMALL)
    with pytest.raises(_Kill):
        pot.fit(train, checkpoint_dir=ckpt, callback=kill_at_5, **settings)
    assert (ckpt / CHECKPOINT_FILE).exists()
    # a fresh process would build a fresh model: do the same
    resumed = create_potential("bpnn", train, **SMALL)
    hist = resumed.fit(train, checkpoint_dir=ckpt, **settings)
    assert len(hist.epochs) == 8 and hist.epochs[4]["epoch"] == 5  # epochs 1-4 came from the checkpoint
    np.testing.assert_array_equal(_weights(resumed), _weights(ref))
    assert [r["train_loss"] for r in hist.epochs] == pytest.approx([r["train_loss"] for r in ref_hist.epochs])
    # other settings: the stale checkpoint is not used
    other = create_potential("bpnn", train, **SMALL)
    hist = other.fit(train, checkpoint_dir=ckpt, **{**settings, "force_weight": 0.5})
    assert hist.epochs[0]["epoch"] == 1


def _disagreeing_labels(frames):
    """Copies of ``frames`` with the forces reversed: validation labels that disagree with training ones."""
    out = []
    for a in frames:
        b = a.copy()
        b.calc = SinglePointCalculator(b, energy=a.get_potential_energy(), forces=-a.get_forces())
        out.append(b)
    return out


def _validation_loss(pot, valid) -> float:
    """The trainer's validation loss (energy MSE + force MSE, force weight 1) recomputed from predictions."""
    from mlpkit.validation.metrics import evaluate

    _, table = evaluate(pot, valid)
    e_mse = np.mean((table.energy_pred - table.energy_ref) ** 2)
    f_mse = np.mean((table.forces_pred - table.forces_ref) ** 2)
    return float(e_mse + f_mse)


def test_early_stopping_keeps_the_best_weights(water_frames):
    train = water_frames[:10]
    # validation labels that disagree with the training labels: the validation loss soon gets worse
    valid = _disagreeing_labels(water_frames[:10])
    pot = create_potential("bpnn", train, **SMALL)
    hist = pot.fit(train, valid, epochs=200, patience=5, keep="best", progress=False, batch_size=5, learning_rate=1e-2)
    assert hist.stopped_because == "early_stopping"
    assert len(hist.epochs) == hist.best_epoch + 5 < 200
    best = min(r["valid_loss"] for r in hist.epochs)
    assert hist.best_valid_loss == best
    # the kept weights are those of the best epoch: recompute its validation loss
    assert _validation_loss(pot, valid) == pytest.approx(best, rel=1e-6)


def test_keep_last_trains_all_epochs_and_keeps_the_final_weights(water_frames):

    train = water_frames[:10]
    # the same disagreeing validation labels as above: with keep="best" this stops early at an early epoch
    valid = _disagreeing_labels(water_frames[:10])
    settings = {"epochs": 40, "patience": 5, "progress": False, "batch_size": 5, "learning_rate": 1e-2, "seed": 2}
    best = create_potential("bpnn", train, **SMALL)
    hist_best = best.fit(train, valid, keep="best", **settings)
    assert hist_best.stopped_because == "early_stopping" and hist_best.best_epoch < 40

    pot = create_potential("bpnn", train, **SMALL)
    hist = pot.fit(train, valid, keep="last", **settings)
    assert hist.stopped_because == "max_epochs" and len(hist.epochs) == 40  # patience ignored
    assert hist.best_epoch == 40 and pot.metadata["best_epoch"] == 40
    last = hist.epochs[-1]["valid_loss"]
    assert hist.best_valid_loss == last > min(r["valid_loss"] for r in hist.epochs)
    # the kept weights are the final ones: recompute the last epoch's validation loss from the model
    # prediction runs the compiled kernels (tabulated radial basis, ~1e-10 relative), training the torch path
    assert _validation_loss(pot, valid) == pytest.approx(last, rel=1e-6)
    # and they are not the best-epoch weights
    assert not np.allclose(_weights(pot), _weights(best))
    with pytest.raises(InputError, match="keep"):
        create_potential("bpnn", train, **SMALL).fit(train, keep="first", progress=False)


def test_warm_start_continues_from_current_weights(water_frames):
    from mlpkit.validation.metrics import evaluate

    train = water_frames[:12]
    pot = create_potential("bpnn", train, **SMALL)
    pot.fit(train, epochs=60, progress=False, valid_fraction=0.0, batch_size=12, learning_rate=1e-2)
    before, _ = evaluate(pot, train)
    refs = pot.module.reference_energies.clone()
    more = water_frames[12:16]
    pot.fit(train + more, epochs=1, progress=False, valid_fraction=0.0, warm_start=True, learning_rate=1e-5)
    after, _ = evaluate(pot, train)
    assert after["forces_mae"] == pytest.approx(before["forces_mae"], rel=0.05)
    assert torch.equal(refs, pot.module.reference_energies)  # normalisation kept
    cold = create_potential("bpnn", train, **SMALL)
    cold.fit(train + more, epochs=1, progress=False, valid_fraction=0.0, learning_rate=1e-5)
    fresh, _ = evaluate(cold, train)
    assert fresh["forces_mae"] > 3 * before["forces_mae"]


def test_bad_settings_are_clear_errors(water_frames):
    pot = create_potential("bpnn", water_frames[:5], **SMALL)
    with pytest.raises(InputError, match=r"unknown bpnn fit setting .epoch. \(did you mean epochs\?\)"):
        pot.fit(water_frames[:5], epoch=3)
    with pytest.raises(InputError, match="learning_rate"):
        pot.fit(water_frames[:5], learning_rate=-1.0, progress=False)
    unlabelled = water_frames[0].copy()
    unlabelled.calc = None
    with pytest.raises(InputError, match="no reference energy"):
        pot.fit([unlabelled], progress=False)


def test_weight_average_by_hand():
    """``avg ← d·avg + (1 − d)·w`` after every step; swap_in loads it and hands back the live weights."""
    from mlpkit.training.trainer import _WeightAverage

    lin = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema = _WeightAverage(lin, 0.75)
    for w in (3.0, 5.0):
        with torch.no_grad():
            lin.weight.fill_(w)
        ema.update()
    expected = 0.75 * (0.75 * 1.0 + 0.25 * 3.0) + 0.25 * 5.0
    live = ema.swap_in()
    assert float(lin.weight) == pytest.approx(expected)
    assert float(live["weight"]) == 5.0


def test_weight_average_is_kept_and_resumes(water_frames, tmp_path):
    """With ``ema_decay`` the kept model is the averaged one (not the last step's weights), and a run killed
    mid-way resumes to exactly the same averaged weights."""
    train = water_frames[:9]
    settings = {"epochs": 6, "progress": False, "batch_size": 3, "seed": 2, "keep": "last", "amsgrad": True}
    plain = create_potential("bpnn", train, **SMALL)
    plain.fit(train, **settings)
    avg = create_potential("bpnn", train, **SMALL)
    avg.fit(train, ema_decay=0.5, **settings)
    assert not np.allclose(_weights(avg), _weights(plain))

    def kill_at_4(epoch, record):
        if epoch == 4:
            raise _Kill

    ckpt = tmp_path / "ckpt"
    killed = create_potential("bpnn", train, **SMALL)
    with pytest.raises(_Kill):
        killed.fit(train, ema_decay=0.5, checkpoint_dir=ckpt, callback=kill_at_4, checkpoint_every=2, **settings)
    resumed = create_potential("bpnn", train, **SMALL)
    resumed.fit(train, ema_decay=0.5, checkpoint_dir=ckpt, checkpoint_every=2, **settings)
    np.testing.assert_array_equal(_weights(resumed), _weights(avg))


def test_force_relative_weighs_large_forces_down_and_small_ones_as_before():
    import torch

    from mlpkit.training.loss import energy_force_loss

    e = torch.zeros(2, dtype=torch.float64)
    n = torch.tensor([1, 1])
    f_ref = torch.tensor([[0.0, 0.0, 0.0], [9.0, 0.0, 0.0]], dtype=torch.float64)  # 0 and 9 eV/Å
    f = f_ref + torch.tensor([[0.1, 0.0, 0.0], [0.1, 0.0, 0.0]], dtype=torch.float64)  # the same 0.1 eV/Å error
    plain, stats = energy_force_loss(e, e, n, f, f_ref, 1.0)
    rel, stats_rel = energy_force_loss(e, e, n, f, f_ref, 1.0, force_relative=1.0)
    assert float(plain) == pytest.approx(2 * 0.01 / 6)
    # weights 1 (|F| = 0) and (1/(9+1))² = 0.01 (|F| = 9 eV/Å)
    assert float(rel) == pytest.approx((0.01 + 0.01 * 0.01) / 6)
    assert stats_rel == stats  # the reported errors stay absolute


@pytest.mark.parametrize("scheduler", ["exponential", "cosine"])
def test_hold_fraction_keeps_the_initial_rate_then_decays_to_the_final_one(water_frames, scheduler):
    train = water_frames[:6]
    settings = {"epochs": 10, "progress": False, "batch_size": 3, "keep": "last", "scheduler": scheduler}
    pot = create_potential("bpnn", train, **SMALL)
    hist = pot.fit(train, learning_rate=1e-2, lr_final=1e-4, hold_fraction=0.6, **settings)
    lrs = [r["lr"] for r in hist.epochs]  # the rate each epoch trained with
    assert lrs[:6] == [1e-2] * 6
    assert all(a > b for a, b in zip(lrs[5:], lrs[6:], strict=False))  # then strictly decreasing
    assert lrs[-1] == pytest.approx(1e-4, rel=1e-12)
    # without a hold the schedule decays from the first epoch, as before
    plain = create_potential("bpnn", train, **SMALL).fit(train, learning_rate=1e-2, lr_final=1e-4, **settings)
    assert plain.epochs[1]["lr"] < 1e-2
    if scheduler == "exponential":
        assert plain.epochs[-1]["lr"] == pytest.approx(1e-4, rel=1e-9)
    with pytest.raises(InputError, match="hold_fraction"):
        create_potential("bpnn", train, **SMALL).fit(train, hold_fraction=1.0, progress=False)
    with pytest.raises(InputError, match="hold_fraction applies"):
        create_potential("bpnn", train, **SMALL).fit(train, hold_fraction=0.5, scheduler="plateau", progress=False)
