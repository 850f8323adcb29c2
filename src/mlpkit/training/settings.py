"""The fit settings of every family trained by :class:`mlpkit.training.Trainer` (epochs of minibatch Adam)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlpkit.schema import Settings


class TrainerSettings(Settings):
    """How a network is fitted: minibatch Adam, a learning-rate schedule, early stopping, checkpoints.

    Defaults tuned on the water benchmark (docs/benchmarks/bpnn-accuracy.md and active-learning.md).
    """

    epochs: int = Field(500, ge=1, description="maximum training epochs")
    force_weight: float = Field(
        1.0,
        ge=0,
        description="weight of the force MSE (eV²/Å²) against the per-atom energy MSE (eV²/atom²); the source "
        "warns that ignoring forces is a pitfall",
    )
    force_relative: float = Field(
        0.0,
        ge=0,
        description="eV/Å; > 0 weighs each atom's squared force error by (F0/(|F_ref| + F0))²: absolute for small "
        "forces, relative for large ones (the fit near minima, i.e. frequencies, is not dominated by hot frames)",
    )
    stress_weight: float = Field(
        0.0,
        ge=0,
        description="weight of the stress MSE ((eV/Å³)²) against the per-atom energy MSE, for periodic cells with a "
        "reference stress (bpnn; 1 weighs 1 meV/atom like 1.6 kbar); 0 = stress not fitted (needed for NPT MD; a "
        "project on a periodic structure gives a bpnn 10 when its file sets none: docs/benchmarks/liquid-water.md)",
    )
    learning_rate: float = Field(
        5e-3,
        gt=0,
        le=1,
        description="initial Adam learning rate (the source: lower it, e.g. to 1e-4, if training does not converge)",
    )
    lr_final: float = Field(2e-5, gt=0, le=1, description="learning rate at the last epoch")
    scheduler: Literal["exponential", "cosine", "plateau", "constant"] = Field(
        "exponential", description="learning-rate schedule from learning_rate to lr_final"
    )
    hold_fraction: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="share of the epochs kept at learning_rate before the exponential or cosine decay to lr_final "
        "over the rest (0: decay from the first epoch)",
    )
    batch_size: int = Field(8, ge=1, description="configurations per optimiser step")
    patience: int = Field(100, ge=1, description="early stopping: epochs without validation improvement")
    keep: Literal["best", "last"] = Field(
        "last",
        description="'best': weights of the best validation epoch (early stopping); 'last': all epochs, final "
        "weights of the decayed schedule (steadier when the validation share is a handful of configurations: "
        "6.1 vs 26.4 meV/Å in the water example, docs/benchmarks/pipeline.md)",
    )
    valid_fraction: float = Field(
        0.1, ge=0, lt=1, description="share of the training data held out for validation when none is given"
    )
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay")
    grad_clip: float = Field(10.0, gt=0, description="gradient-norm clip")
    amsgrad: bool = Field(False, description="AMSGrad variant of Adam (MACE's CLI default)")
    ema_decay: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="exponential moving average of the weights after every optimiser step (e.g. 0.99, MACE's "
        "--ema); validation, early stopping and the kept model use the averaged weights; 0 = off",
    )
    checkpoint_every: int = Field(50, ge=1, description="epochs between checkpoints (with a checkpoint_dir)")


#: run-time options of a fit (not configuration): their defaults
RUNTIME_DEFAULTS = {"seed": 0, "checkpoint_dir": None, "warm_start": False, "progress": True, "callback": None}
