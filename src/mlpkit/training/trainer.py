"""A generic trainer: minibatch Adam with a learning-rate schedule, early stopping and resumable checkpoints.

Which weights the module ends with is the ``keep`` setting: ``"best"`` (default) keeps the weights of the epoch
with the lowest validation loss (training loss without validation data) and stops early after ``patience``
epochs without improvement; ``"last"`` trains all ``epochs`` (no early stopping, ``patience`` is ignored) and
keeps the final weights, i.e. those at the end of the learning-rate schedule (``lr_final`` for the decaying
schedulers). ``"last"`` is for small validation sets (a handful of frames, as in active learning), where the
best validation epoch is a noisy choice that often falls early, while the learning rate is still high.

Model-agnostic: it gets a torch module (whose parameters it optimises), a list of training items, optional
validation items and a ``loss_fn(items, training) -> (loss, stats)`` (see :mod:`mlpkit.training.loss`). Any
family whose loss fits that shape reuses it.

Checkpoints (``checkpoint_dir/checkpoint.pt``, plain tensors and numbers read with ``weights_only=True``)
hold the weights, optimiser and scheduler state, RNG state, history and the best weights so far; a run
killed at any point and started again with the same data and settings continues from the last
checkpoint and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlpkit.errors import InputError
from mlpkit.schema import validate_settings
from mlpkit.training.history import FitHistory
from mlpkit.training.loss import summarize
from mlpkit.training.settings import RUNTIME_DEFAULTS, TrainerSettings

#: every setting a Trainer reads, with its default: the typed fit settings plus the run-time options
FIT_DEFAULTS: dict[str, Any] = {**TrainerSettings().model_dump(), **RUNTIME_DEFAULTS}

#: values of the ``keep`` setting (which weights a fit ends with)
KEEP_CHOICES = ("best", "last")

CHECKPOINT_FILE = "checkpoint.pt"


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Trainer:
    """Train ``module`` on ``train`` items; see the module docstring.

    settings: the keys of :data:`FIT_DEFAULTS`; ``callback(epoch, record)`` (optional) is called after each
    epoch's checkpoint (it may raise to abort, as a kill would).
    fingerprint: anything JSON-able identifying the data and model set-up: a checkpoint from a different
    set-up is ignored (and overwritten) rather than resumed.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        loss_fn: Callable[[Sequence[Any], bool], tuple[torch.Tensor, dict[str, float]]],
        train: Sequence[Any],
        valid: Sequence[Any] | None,
        settings: dict[str, Any],
        fingerprint: Any = None,
    ):
        self.module = module
        self.loss_fn = loss_fn
        self.train = list(train)
        self.valid = list(valid) if valid else None
        runtime = {k: settings[k] for k in RUNTIME_DEFAULTS if k in settings}
        typed = validate_settings(
            TrainerSettings, {k: v for k, v in settings.items() if k not in runtime}, "fit setting"
        )
        self.s = {**RUNTIME_DEFAULTS, **typed.model_dump(), **runtime}
        keys = ("learning_rate", "lr_final", "scheduler", "batch_size", "weight_decay", "seed", "epochs")
        # "keep" joins the fingerprint only when not the default, so checkpoints written before it existed resume
        extra = {"keep": self.s["keep"]} if self.s["keep"] != "best" else {}
        extra.update({k: self.s[k] for k in ("amsgrad", "ema_decay", "hold_fraction") if self.s[k]})
        self.fingerprint = _fingerprint({"fp": fingerprint, **{k: self.s[k] for k in keys}, **extra})
        if self.s["hold_fraction"] and self.s["scheduler"] not in ("exponential", "cosine"):
            raise InputError(
                f"hold_fraction applies to the exponential and cosine schedules, not to {self.s['scheduler']!r}"
            )
        self.checkpoint_dir = Path(self.s["checkpoint_dir"]) if self.s["checkpoint_dir"] else None

    # -- pieces ----------------------------------------------------------------------------------------

    def _scheduler(self, opt: torch.optim.Optimizer):
        """The learning-rate schedule, stepped once per epoch.

        With ``hold_fraction`` h > 0 the decaying schedules (exponential, cosine) keep ``learning_rate`` for the
        first round(h · epochs) epochs and decay to ``lr_final`` over the rest: training at the high rate for
        most of the budget and annealing at the end (as MACE's CLI ends on a lower rate) instead of decaying from
        the first epoch.
        """
        epochs, lr0, lr1 = int(self.s["epochs"]), float(self.s["learning_rate"]), float(self.s["lr_final"])
        kind = self.s["scheduler"]
        hold = min(round(float(self.s["hold_fraction"]) * epochs), epochs - 1)
        # without a hold, torch's own schedulers as before: checkpoints written with them keep resuming
        if kind == "exponential" and hold == 0:
            gamma = (lr1 / lr0) ** (1.0 / max(epochs - 1, 1))
            return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
        if kind == "cosine" and hold == 0:
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=lr1)
        if kind in ("exponential", "cosine"):
            ratio = lr1 / lr0

            def held(e: int) -> float:  # epochs 0..hold-1 at lr0, then x = 1/(epochs-hold) .. 1: lr_final last
                x = min(max(e - hold + 1, 0) / (epochs - hold), 1.0)
                if kind == "exponential":
                    return ratio**x
                return ratio + (1.0 - ratio) * 0.5 * (1.0 + math.cos(math.pi * x))

            return torch.optim.lr_scheduler.LambdaLR(opt, held)
        if kind == "plateau":
            patience = max(5, int(self.s["patience"]) // 4)
            return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=patience, min_lr=lr1)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)

    def _evaluate(self, items: Sequence[Any]) -> dict[str, float]:
        stats = []
        bs = max(int(self.s["batch_size"]), 64)
        for i in range(0, len(items), bs):
            _, st = self.loss_fn(items[i : i + bs], False)
            stats.append(st)
        return summarize(stats, float(self.s.get("force_weight", 1.0)), float(self.s.get("stress_weight", 0.0)))

    def _save_checkpoint(self, state: dict) -> None:
        assert self.checkpoint_dir is not None
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_dir / (CHECKPOINT_FILE + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_dir / CHECKPOINT_FILE)

    def _load_checkpoint(self) -> dict | None:
        if self.checkpoint_dir is None:
            return None
        file = self.checkpoint_dir / CHECKPOINT_FILE
        if not file.exists():
            return None
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception:  # a corrupt checkpoint (disk full, ...) means starting over, not crashing
            return None
        if state.get("fingerprint") != self.fingerprint:
            return None
        return state

    # -- the loop --------------------------------------------------------------------------------------

    def run(self) -> FitHistory:
        """Train until ``epochs`` (or early stopping with ``keep="best"``); the module ends with the kept weights.

        The returned history's ``best_epoch`` is the epoch whose weights were kept (the last one with
        ``keep="last"``) and ``best_valid_loss`` its monitored loss (validation loss, else training loss).
        """
        s = self.s
        t_start = time.perf_counter()
        torch.manual_seed(int(s["seed"]))
        gen = torch.Generator().manual_seed(int(s["seed"]))
        params = [p for p in self.module.parameters() if p.requires_grad]
        opt = torch.optim.Adam(
            params, lr=float(s["learning_rate"]), weight_decay=float(s["weight_decay"]), amsgrad=bool(s["amsgrad"])
        )
        ema = _WeightAverage(self.module, float(s["ema_decay"])) if s["ema_decay"] else None
        sched = self._scheduler(opt)
        history = FitHistory()
        best_state = copy.deepcopy(self.module.state_dict())
        best_loss, best_epoch, bad = math.inf, -1, 0
        start_epoch = 0
        seconds_before = 0.0
        ckpt = self._load_checkpoint()
        if ckpt is not None:
            self.module.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            gen.set_state(ckpt["generator"])
            torch.set_rng_state(ckpt["torch_rng"])
            best_state = ckpt["best_state"]
            best_loss, best_epoch, bad = float(ckpt["best_loss"]), int(ckpt["best_epoch"]), int(ckpt["bad_epochs"])
            history.epochs = json.loads(ckpt["history"])
            if ema is not None:
                ema.load_state_dict(ckpt["ema"])
            start_epoch = int(ckpt["epoch"])
            seconds_before = float(ckpt["seconds"])
        epochs = int(s["epochs"])
        n = len(self.train)
        bs = min(int(s["batch_size"]), n)
        stopped = "max_epochs"
        keep_last = s["keep"] == "last"
        patience = epochs + 1 if keep_last else int(s["patience"])  # "last": never stop early
        progress = _Progress(epochs, start_epoch, enabled=bool(s["progress"]))
        try:
            for epoch in range(start_epoch, epochs):
                self.module.train()
                perm = torch.randperm(n, generator=gen).tolist()
                stats = []
                for i in range(0, n, bs):
                    items = [self.train[k] for k in perm[i : i + bs]]
                    opt.zero_grad(set_to_none=True)
                    loss, st = self.loss_fn(items, True)
                    loss.backward()
                    if s["grad_clip"]:
                        torch.nn.utils.clip_grad_norm_(params, float(s["grad_clip"]))
                    opt.step()
                    if ema is not None:
                        ema.update()
                    stats.append(st)
                self.module.eval()
                live = ema.swap_in() if ema is not None else None  # evaluate (and keep) the averaged weights
                record = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"]}
                record.update(
                    {
                        f"train_{k}": v
                        for k, v in summarize(stats, float(s["force_weight"]), float(s["stress_weight"])).items()
                    }
                )
                if self.valid:
                    record.update({f"valid_{k}": v for k, v in self._evaluate(self.valid).items()})
                    monitor = record["valid_loss"]
                else:
                    monitor = record["train_loss"]
                if not np.isfinite(monitor):
                    raise InputError(
                        f"training diverged at epoch {epoch + 1} (loss {monitor}); lower learning_rate "
                        f"(now {s['learning_rate']}) or check the data"
                    )
                history.epochs.append(record)
                if monitor < best_loss:
                    best_loss, best_epoch, bad = monitor, epoch + 1, 0
                    best_state = copy.deepcopy(self.module.state_dict())
                else:
                    bad += 1
                if live is not None:
                    self.module.load_state_dict(live)
                if s["scheduler"] == "plateau":
                    sched.step(monitor)
                else:
                    sched.step()
                progress.update(epoch + 1, record)
                finished = epoch + 1 == epochs or bad >= patience
                if self.checkpoint_dir is not None and ((epoch + 1) % int(s["checkpoint_every"]) == 0 or finished):
                    self._save_checkpoint(
                        {
                            "fingerprint": self.fingerprint,
                            "epoch": epoch + 1,
                            "model": self.module.state_dict(),
                            "optimizer": opt.state_dict(),
                            "scheduler": sched.state_dict(),
                            "generator": gen.get_state(),
                            "torch_rng": torch.get_rng_state(),
                            "best_state": best_state,
                            "best_loss": best_loss,
                            "best_epoch": best_epoch,
                            "bad_epochs": bad,
                            "history": json.dumps(history.epochs),
                            "seconds": seconds_before + time.perf_counter() - t_start,
                            **({"ema": ema.state_dict()} if ema is not None else {}),
                        }
                    )
                if s["callback"] is not None:
                    # the callback sees the weights that would be kept (the averaged ones with EMA)
                    live = ema.swap_in() if ema is not None else None
                    try:
                        s["callback"](epoch + 1, record)
                    finally:
                        if live is not None:
                            self.module.load_state_dict(live)
                if bad >= patience:
                    stopped = "early_stopping"
                    break
        finally:
            progress.close()
        if keep_last and history.epochs:
            # the module holds the final weights (the averaged ones with EMA); report the kept epoch
            if ema is not None:
                ema.swap_in()
            last = history.epochs[-1]
            best_epoch = int(last["epoch"])
            best_loss = float(last["valid_loss"] if self.valid else last["train_loss"])
        else:
            self.module.load_state_dict(best_state)
        history.best_epoch = best_epoch
        history.best_valid_loss = float(best_loss)
        history.seconds = seconds_before + time.perf_counter() - t_start
        history.stopped_because = stopped if history.epochs else "no_epochs"
        return history


class _Progress:
    """A rich progress bar with the current losses (silent when disabled)."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.bar = None
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            transient=False,
        )
        self.task = self.bar.add_task("fit", total=total, completed=done, losses="")
        self.bar.start()

    def update(self, epoch: int, record: dict[str, float]) -> None:
        if self.bar is None:
            return
        parts = [f"F {1000 * record['train_forces_rmse']:.1f}", f"E {1000 * record['train_energy_rmse']:.2f}"]
        if "valid_loss" in record:
            parts += [
                f"| valid F {1000 * record['valid_forces_rmse']:.1f}",
                f"E {1000 * record['valid_energy_rmse']:.2f}",
            ]
        text = "RMSE " + " ".join(parts) + " (meV/Å, meV/atom)"
        self.bar.update(self.task, completed=epoch, losses=text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class _WeightAverage:
    """Exponential moving average of a module's floating-point parameters and buffers.

    ``avg ← decay · avg + (1 − decay) · w`` after every optimiser step (as MACE's ``--ema``): the average of the
    last ~1/(1 − decay) steps, which smooths the noise of small minibatches at the end of a schedule.
    """

    def __init__(self, module: torch.nn.Module, decay: float):
        self.module, self.decay = module, decay
        self.avg = {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self) -> None:
        live = self.module.state_dict()
        keys = list(self.avg)
        torch._foreach_lerp_([self.avg[k] for k in keys], [live[k].detach() for k in keys], 1.0 - self.decay)

    def swap_in(self) -> dict:
        """Load the averaged weights into the module; returns a copy of the live state to restore."""
        live = copy.deepcopy(self.module.state_dict())
        self.module.load_state_dict({**live, **self.avg})
        return live

    def state_dict(self) -> dict:
        return {k: v.clone() for k, v in self.avg.items()}

    def load_state_dict(self, state: dict) -> None:
        self.avg = {k: v.clone() for k, v in state.items()}
