"""Vibrations of a molecule from MD and from its Hessian: the power spectrum of the mass-weighted velocity
autocorrelation, and harmonic frequencies by finite differences of the forces.

Units: velocities Å/fs, times fs, frequencies cm⁻¹. A trajectory is a list of ``ase.Atoms`` frames equally spaced in
time by ``dt`` fs (ASE trajectories keep the momenta, so velocities come from ``Atoms.get_velocities``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units

from mlpkit.errors import InputError

#: speed of light in cm/fs, to turn a frequency in 1/fs into a wavenumber in cm⁻¹
C_CM_PER_FS = 2.99792458e-5
#: complex numbers one FFT of a block of atoms' signals holds at most (2**23: 134 MB), so spectra of large boxes fit
FFT_BLOCK_ELEMENTS = 2**23


def is_molecule(atoms: Atoms) -> bool:
    """True for a finite system (no periodic direction): the spectrum/frequencies branch applies."""
    return not bool(np.any(atoms.pbc))


@dataclass
class VibrationalSpectrum:
    """Power spectrum of the mass-weighted velocity autocorrelation.

    frequencies: (n,) cm⁻¹; intensity: (n,) arbitrary units, max 1; peaks: cm⁻¹ of the main peaks, ascending;
    vacf_time: (m,) fs; vacf: (m,) normalised mass-weighted VACF, vacf[0] = 1; nyquist: cm⁻¹; resolution: cm⁻¹.
    """

    frequencies: np.ndarray
    intensity: np.ndarray
    peaks: list[float]
    vacf_time: np.ndarray
    vacf: np.ndarray
    nyquist: float
    resolution: float

    def to_dict(self) -> dict:
        return {
            "peaks_cm-1": [round(p, 1) for p in self.peaks],
            "nyquist_cm-1": self.nyquist,
            "resolution_cm-1": self.resolution,
        }


def _velocities(frames: Sequence[Atoms]) -> np.ndarray:
    """(n_frames, n_atoms, 3) Å/fs (ASE stores momenta in amu·Å/ASE-time; convert to fs)."""
    v = np.stack([a.get_velocities() for a in frames])
    if not np.any(v):
        raise InputError("the trajectory carries no velocities (write it with momenta, e.g. an ASE .traj)")
    return v * units.fs  # ASE velocity unit is Å / (ASE time); Å/fs = that * fs


def vibrational_spectrum(
    frames: Sequence[Atoms],
    dt: float,
    *,
    velocities: np.ndarray | None = None,
    min_frequency: float = 200.0,
    prominence: float = 0.05,
    max_peaks: int = 12,
) -> VibrationalSpectrum:
    """Vibrational density of states from the mass-weighted velocity autocorrelation (Wiener-Khinchin).

    ``frames``: equally spaced configurations, ``dt`` fs apart. ``velocities`` (n_frames, n_atoms, 3) Å/fs
    overrides the frames' own. The spectrum is |FFT(√m v)|² summed over atoms and directions, with a Hann
    window (less leakage, broader peaks) and zero padding to 4x; peaks below ``min_frequency`` cm⁻¹
    (translation, rotation) are ignored, and only peaks with ``prominence`` of the maximum are kept.
    """
    from scipy.signal import find_peaks

    if dt <= 0:
        raise InputError(f"time between frames must be > 0 fs, got {dt}")
    v = _velocities(frames) if velocities is None else np.asarray(velocities, dtype=float)
    if v.ndim != 3 or v.shape[0] < 8:
        raise InputError(f"need at least 8 frames of velocities for a spectrum, got shape {v.shape}")
    masses = frames[0].get_masses() if frames else np.ones(v.shape[1])
    n = v.shape[0]
    # Remove the centre-of-mass drift so it does not pile up at zero frequency.
    v = v - (np.einsum("i,tij->tj", masses, v) / masses.sum())[:, None, :]
    signal = v * np.sqrt(masses)[None, :, None]
    window = np.hanning(n)[:, None, None]
    nfft = 4 * int(2 ** np.ceil(np.log2(n)))
    # blocks of atoms, so a large box's transform stays within FFT_BLOCK_ELEMENTS (3,000 atoms x 10,000 frames
    # padded to 65,536 would be 4.7 GB at once); the spectrum and the VACF are sums over atoms, so this is exact
    block = max(1, FFT_BLOCK_ELEMENTS // (nfft * 3))
    spec = np.zeros(nfft // 2 + 1)
    full = np.zeros(n)
    for a0 in range(0, signal.shape[1], block):
        part = signal[:, a0 : a0 + block]
        spec += np.sum(np.abs(np.fft.rfft(part * window, n=nfft, axis=0)) ** 2, axis=(1, 2))
        full += np.fft.irfft(np.abs(np.fft.rfft(part, n=2 * n, axis=0)) ** 2, axis=0)[:n].sum(axis=(1, 2))
    freq = np.fft.rfftfreq(nfft, d=dt) / C_CM_PER_FS
    keep = freq >= 0
    freq, spec = freq[keep], spec[keep]
    mask = freq >= min_frequency
    top = spec[mask].max() if mask.any() else spec.max()
    intensity = spec / top if top > 0 else spec
    idx, props = find_peaks(np.where(mask, intensity, 0.0), prominence=prominence)
    order = np.argsort(props["prominences"])[::-1][:max_peaks]
    peaks = sorted(float(freq[idx[k]]) for k in order)
    # Normalised VACF (unpadded, mass-weighted; summed above), averaged over time origins, for the plot.
    full = full / (n - np.arange(n))
    vacf = full / full[0] if full[0] != 0 else full
    return VibrationalSpectrum(
        frequencies=freq,
        intensity=np.clip(intensity, 0, None),
        peaks=peaks,
        vacf_time=np.arange(n) * dt,
        vacf=vacf,
        nyquist=float(0.5 / dt / C_CM_PER_FS),
        resolution=float(1.0 / (n * dt) / C_CM_PER_FS),
    )


# -- harmonic frequencies -------------------------------------------------------------------------------


def harmonic_frequencies(atoms: Atoms, calculator=None, *, delta: float = 0.005, potential=None) -> np.ndarray:
    """Harmonic vibrational frequencies (cm⁻¹, ascending; imaginary ones as negative numbers).

    The Hessian comes from central finite differences of the forces (displacement ``delta`` Å); with a
    ``potential`` (an mlpkit Potential) all 6N displaced copies are predicted in one batched call, otherwise
    ``calculator`` (any ASE calculator) is called 6N times. Translations and rotations (the 6, or 5 for a
    linear molecule, smallest |ω|) are dropped for molecules; ASE's VibrationsData does the mass-weighting.
    """
    from ase.vibrations import VibrationsData

    n = len(atoms)
    displaced = []
    for i in range(n):
        for k in range(3):
            for sign in (+1, -1):
                a = atoms.copy()
                a.positions[i, k] += sign * delta
                displaced.append(a)
    if potential is not None:
        forces = np.stack(potential.predict(displaced).forces)
    elif calculator is not None:
        out = []
        for a in displaced:
            a.calc = calculator
            out.append(a.get_forces())
        forces = np.stack(out)
    else:
        raise InputError("harmonic_frequencies needs a calculator or a potential")
    forces = forces.reshape(n * 3, 2, n * 3)
    hessian = -(forces[:, 0] - forces[:, 1]) / (2 * delta)  # (3N, 3N) eV/Å², rows = displaced coordinate
    hessian = 0.5 * (hessian + hessian.T)
    freqs = VibrationsData.from_2d(atoms, hessian).get_frequencies()  # complex cm⁻¹, imaginary for negative
    real = np.where(np.abs(freqs.imag) > np.abs(freqs.real), -np.abs(freqs.imag), freqs.real).astype(float)
    real = np.sort(real)
    if is_molecule(atoms) and n > 1:
        n_drop = 5 if _is_linear(atoms) else 6
        keep = np.sort(np.argsort(np.abs(real))[n_drop:])
        real = real[keep]
    return real


def _is_linear(atoms: Atoms) -> bool:
    if len(atoms) <= 2:
        return True
    moments = atoms.get_moments_of_inertia()
    return bool(np.min(moments) < 1e-3 * np.max(moments))
