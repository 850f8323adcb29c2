"""The uncertainty watchdog of an MD run: warns when the model's calibrated uncertainty passes one bound, stops the
run at a second, and keeps the uncertain configurations (the ones worth labelling)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError
from mlpkit.md.frames import raw_uncertainty, step_frame


class UncertaintyWatchdog:
    """Watches the uncertainty of every MD step: warns above ``warn``, stops the run above ``stop``.

    Bounds are in eV/Å and apply to the calibrated uncertainty ``scale · max_i ||σ_F,i||`` (``scale`` from
    :mod:`mlpkit.uncertainty.calibration`; 1.0 means raw committee spread). Steps above ``warn`` are kept as
    ``uncertain_frames`` (at most ``max_frames`` of them, the most recent kept) even between recorded frames,
    because those are the configurations worth labelling.
    """

    def __init__(self, warn: float, stop: float, *, scale: float = 1.0, max_frames: int = 1000):
        if not (np.isfinite(warn) and np.isfinite(stop)) or warn < 0 or stop <= warn:
            raise InputError(f"watchdog bounds need 0 <= warn < stop, got warn={warn}, stop={stop}")
        if scale <= 0 or not np.isfinite(scale):
            raise InputError(f"watchdog scale must be positive, got {scale}")
        self.warn = float(warn)
        self.stop = float(stop)
        self.scale = float(scale)
        self.max_frames = int(max_frames)
        self.uncertain_frames: list[Atoms] = []
        self.n_warn = 0
        self.max_seen = 0.0

    def __repr__(self) -> str:
        return f"UncertaintyWatchdog(warn={self.warn}, stop={self.stop}, scale={self.scale})"

    def reset(self) -> None:
        self.uncertain_frames = []
        self.n_warn = 0
        self.max_seen = 0.0

    def check(self, atoms: Atoms, results: dict) -> str:
        """'ok', 'warn' or 'stop' for the current step (``results``: the calculator's results dict)."""
        raw = raw_uncertainty(results)
        if raw is None:
            raise InputError(
                "the uncertainty watchdog needs a calculator that reports an uncertainty (a potential whose "
                "capabilities.uncertainty is not 'none': a committee, MC-dropout, a GP's variance, a linear model's "
                "extrapolation grade)"
            )
        u = self.scale * float(raw)
        self.max_seen = max(self.max_seen, u) if np.isfinite(u) else float("inf")
        if not np.isfinite(u) or u >= self.stop:
            return "stop"
        if u >= self.warn:
            self.n_warn += 1
            frame = step_frame(atoms, results, self.scale)
            self.uncertain_frames.append(frame)
            if len(self.uncertain_frames) > self.max_frames:
                self.uncertain_frames.pop(0)
            return "warn"
        return "ok"
