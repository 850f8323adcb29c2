"""Diffusion from an MD trajectory: positions unwrapped across periodic boundaries, the mean-squared displacement
over all time origins, and the Einstein diffusion coefficient.

Units: positions Å, times fs, diffusion coefficients cm²/s (1 Å²/fs = 0.1 cm²/s). Frames are equally spaced in time
by ``dt`` fs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError

#: 1 Å²/fs in cm²/s
A2_PER_FS_IN_CM2_PER_S = 1e-16 / 1e-15
#: above this exponent α of MSD ∝ t^α the fit window is taken as not yet diffusive (ballistic motion gives 2; liquid
#: water reaches ~1 after ~1 ps)
DIFFUSIVE_EXPONENT = 1.3

#: complex numbers one FFT of a block of atoms' positions holds at most (2**23: 134 MB)
FFT_BLOCK_ELEMENTS = 2**23


@dataclass
class Diffusion:
    """Mean-squared displacement and the Einstein diffusion coefficient.

    lag: (m,) fs; msd: (m,) Å²; coefficient: cm²/s (MSD = 6 D t in 3D); fit_range: (t0, t1) fs of the linear fit.
    """

    lag: np.ndarray
    msd: np.ndarray
    coefficient: float
    fit_range: tuple[float, float]
    slope: float
    intercept: float

    @property
    def exponent(self) -> float:
        """α of MSD ∝ t^α over the fit range (log-log least squares): 1 when the motion is diffusive, 2 while it is
        still ballistic (a trajectory too short for a diffusion coefficient), nan without positive lags/MSD."""
        t0, t1 = self.fit_range
        keep = (self.lag >= t0) & (self.lag <= t1) & (self.lag > 0) & (self.msd > 0)
        if keep.sum() < 2:
            return float("nan")
        return float(np.polyfit(np.log(self.lag[keep]), np.log(self.msd[keep]), 1)[0])

    def regime_warning(self) -> str | None:
        """A sentence when the fit window is not in the diffusive regime (α > :data:`DIFFUSIVE_EXPONENT`)."""
        alpha = self.exponent
        if not alpha > DIFFUSIVE_EXPONENT:
            return None
        return (
            f"the MSD grows as t^{alpha:.2f} in the fit window ({self.fit_range[0]:.0f}-{self.fit_range[1]:.0f} fs; "
            f"diffusive motion: t^1): the trajectory ({self.lag[-1]:.0f} fs) is too short for a diffusion coefficient"
        )

    def to_dict(self) -> dict:
        return {
            "D_cm2_per_s": self.coefficient,
            "fit_range_fs": list(self.fit_range),
            "msd_exponent": self.exponent,
            "warning": self.regime_warning(),
        }


def unwrap_positions(frames: Sequence[Atoms]) -> np.ndarray:
    """(n_frames, n_atoms, 3) Å positions continuous in time: each step's displacement is taken in the minimum
    image, so atoms that were wrapped back into the cell do not jump. Needs < half a cell per frame; the cell
    may change between frames (NPT)."""
    pos = np.stack([a.positions for a in frames])
    first = frames[0]
    if not np.any(first.pbc):
        return pos
    # per-frame cells (NPT): the fractional step is free of the barostat's affine scaling; it is then measured
    # with the later frame's cell
    cells = np.stack([a.cell[:] for a in frames])  # (n_frames, 3, 3)
    frac = np.einsum("tai,tij->taj", pos, np.linalg.inv(cells))
    step = np.diff(frac, axis=0)
    pbc = np.asarray(first.pbc, bool)
    step[..., pbc] -= np.round(step[..., pbc])
    step = np.einsum("taj,tjk->tak", step, cells[1:])
    return np.concatenate([pos[:1], pos[:1] + np.cumsum(step, axis=0)], axis=0)


def mean_squared_displacement(positions: np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """(max_lag,) Å² MSD over all time origins and atoms, for lags 0 .. max_lag-1 frames (FFT, O(n log n)).

    ``positions`` (n_frames, n_atoms, 3), unwrapped.
    """
    x = np.asarray(positions, dtype=float)
    n, n_atoms = x.shape[0], x.shape[1]
    max_lag = n if max_lag is None else min(int(max_lag), n)
    k = np.arange(n)
    total = np.zeros(n)
    # blocks of atoms, so the FFT of a large box stays within FFT_BLOCK_ELEMENTS (the MSD is a mean over atoms)
    block = max(1, FFT_BLOCK_ELEMENTS // (2 * n * 3))
    for a0 in range(0, n_atoms, block):
        part = x[:, a0 : a0 + block]
        # MSD(k) = <x(t+k)²> + <x(t)²> - 2<x(t)x(t+k)>; the cross term by FFT (Calandrini et al., nMoldyn).
        sq = np.sum(part**2, axis=2)  # (n, atoms of the block)
        f = np.fft.rfft(part, n=2 * n, axis=0)
        cross = np.fft.irfft(np.abs(f) ** 2, axis=0)[:n].sum(axis=2)  # (n, atoms of the block)
        cross /= (n - k)[:, None]
        cumsq = np.concatenate([np.zeros((1, sq.shape[1])), np.cumsum(sq, axis=0)])  # (n+1, atoms of the block)
        late = cumsq[n][None, :] - cumsq[k]  # sum_{t=k}^{n-1} x_t²
        early = cumsq[n - k]  # sum_{t=0}^{n-k-1} x_t²
        total += ((late + early) / (n - k)[:, None] - 2 * cross).sum(axis=1)
    return np.clip((total / n_atoms)[:max_lag], 0.0, None)


def diffusion_coefficient(
    frames: Sequence[Atoms] | None,
    dt: float,
    *,
    positions: np.ndarray | None = None,
    fit_window: tuple[float, float] = (0.2, 0.6),
    select: np.ndarray | None = None,
) -> Diffusion:
    """Diffusion coefficient (cm²/s) from the Einstein relation MSD(t) = 6 D t + c.

    Positions are unwrapped first (``positions`` (n_frames, n_atoms, 3), if given, are taken as already
    unwrapped). The MSD is fitted between ``fit_window`` fractions of the trajectory length: early lags are
    ballistic, late lags have few time origins. ``select`` is a boolean mask of atoms (e.g. oxygens only).
    """
    if dt <= 0:
        raise InputError(f"time between frames must be > 0 fs, got {dt}")
    pos = unwrap_positions(frames) if positions is None else np.asarray(positions, dtype=float)
    if select is not None:
        pos = pos[:, np.asarray(select, bool)]
    n = pos.shape[0]
    if n < 10:
        raise InputError(f"need at least 10 frames for a diffusion coefficient, got {n}")
    msd = mean_squared_displacement(pos)
    lag = np.arange(n) * dt
    a, b = int(fit_window[0] * n), max(int(fit_window[1] * n), int(fit_window[0] * n) + 2)
    slope, intercept = np.polyfit(lag[a:b], msd[a:b], 1)
    d = slope / 6.0 * A2_PER_FS_IN_CM2_PER_S
    return Diffusion(
        lag=lag,
        msd=msd,
        coefficient=float(d),
        fit_range=(float(lag[a]), float(lag[b - 1])),
        slope=float(slope),
        intercept=float(intercept),
    )
