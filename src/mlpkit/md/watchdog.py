"""The uncertainty watchdog of an MD run: warns when the model's calibrated uncertainty passes one bound, stops the
run at a second, and keeps the uncertain configurations (the ones worth labelling). Under a barostat it also stops
a periodic box whose density leaves the training data's range: in a dilute box the members of a committee agree on
small forces, so the uncertainty alone does not see a box boiling away from where the potential was trained."""

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

    ``density_range`` (g/cm³, (low, high)): a periodic box whose density leaves it stops the run, whatever the
    uncertainty (see the module docstring). After a ``"stop"``, ``stop_reason`` says which bound was crossed.
    """

    def __init__(
        self,
        warn: float,
        stop: float,
        *,
        scale: float = 1.0,
        max_frames: int = 1000,
        density_range: tuple[float, float] | None = None,
    ):
        if not (np.isfinite(warn) and np.isfinite(stop)) or warn < 0 or stop <= warn:
            raise InputError(f"watchdog bounds need 0 <= warn < stop, got warn={warn}, stop={stop}")
        if scale <= 0 or not np.isfinite(scale):
            raise InputError(f"watchdog scale must be positive, got {scale}")
        if density_range is not None:
            lo, hi = (float(x) for x in density_range)
            if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 or hi <= lo:
                raise InputError(f"a density range needs 0 < low < high (g/cm³), got {density_range}")
            density_range = (lo, hi)
        self.density_range = density_range
        self.warn = float(warn)
        self.stop = float(stop)
        self.scale = float(scale)
        self.max_frames = int(max_frames)
        self.uncertain_frames: list[Atoms] = []
        self.n_warn = 0
        self.max_seen = 0.0
        self.stop_reason = ""

    def __repr__(self) -> str:
        dens = f", density_range={self.density_range}" if self.density_range is not None else ""
        return f"UncertaintyWatchdog(warn={self.warn}, stop={self.stop}, scale={self.scale}{dens})"

    def reset(self) -> None:
        self.uncertain_frames = []
        self.n_warn = 0
        self.max_seen = 0.0
        self.stop_reason = ""

    def density(self, atoms: Atoms) -> float:
        """g/cm³ of the periodic box ``atoms``."""
        from mlpkit.data.boxes import density_of

        return density_of(atoms)

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
            self.stop_reason = f"uncertainty {u:.3f} >= stop bound {self.stop:.3f} (calibrated units)"
            return "stop"
        if self.density_range is not None and atoms.pbc.all():
            rho, (lo, hi) = self.density(atoms), self.density_range
            if not lo <= rho <= hi:
                self.stop_reason = (
                    f"density {rho:.3f} g/cm³ left the range the potential was trained on ({lo:.3f}-{hi:.3f} g/cm³)"
                )
                return "stop"
        if u >= self.warn:
            self.n_warn += 1
            frame = step_frame(atoms, results, self.scale)
            self.uncertain_frames.append(frame)
            if len(self.uncertain_frames) > self.max_frames:
                self.uncertain_frames.pop(0)
            return "warn"
        return "ok"
