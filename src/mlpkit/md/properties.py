"""Properties from an MD trajectory: vibrational spectrum and harmonic frequencies for molecules, radial
distribution function and diffusion coefficient for condensed systems, and their plots (PNG).

Units: positions Å, velocities Å/fs, times fs, frequencies cm⁻¹, diffusion coefficients cm²/s
(1 Å²/fs = 0.1 cm²/s). A trajectory is a list of ``ase.Atoms`` frames equally spaced in time by
``dt`` fs (ASE trajectories keep the momenta, so velocities come from ``Atoms.get_velocities``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms, units

from mlpkit.errors import InputError
from mlpkit.md.plots import plot_msd, plot_rdf, plot_spectrum

#: speed of light in cm/fs, to turn a frequency in 1/fs into a wavenumber in cm⁻¹
C_CM_PER_FS = 2.99792458e-5
#: 1 Å²/fs in cm²/s
A2_PER_FS_IN_CM2_PER_S = 1e-16 / 1e-15


def is_molecule(atoms: Atoms) -> bool:
    """True for a finite system (no periodic direction): the spectrum/frequencies branch applies."""
    return not bool(np.any(atoms.pbc))


# -- vibrational spectrum -------------------------------------------------------------------------------


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
    spec = np.sum(np.abs(np.fft.rfft(signal * window, n=nfft, axis=0)) ** 2, axis=(1, 2))
    freq = np.fft.rfftfreq(nfft, d=dt) / C_CM_PER_FS
    keep = freq >= 0
    freq, spec = freq[keep], spec[keep]
    mask = freq >= min_frequency
    top = spec[mask].max() if mask.any() else spec.max()
    intensity = spec / top if top > 0 else spec
    idx, props = find_peaks(np.where(mask, intensity, 0.0), prominence=prominence)
    order = np.argsort(props["prominences"])[::-1][:max_peaks]
    peaks = sorted(float(freq[idx[k]]) for k in order)
    # Normalised VACF (unpadded, mass-weighted), averaged over time origins, for the plot.
    full = np.fft.irfft(np.abs(np.fft.rfft(signal, n=2 * n, axis=0)) ** 2, axis=0)[:n].sum(axis=(1, 2))
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


# -- radial distribution function ------------------------------------------------------------------------


@dataclass
class RDF:
    """g(r) averaged over frames. r: (n_bins,) Å bin centres; g: (n_bins,); coordination: (n_bins,) running
    coordination number n(r) = 4πρ ∫₀ʳ g r'² dr'; pair: the element pair or "all"; density: atoms/Å³."""

    r: np.ndarray
    g: np.ndarray
    coordination: np.ndarray
    pair: str
    density: float
    first_peak: float = field(default=float("nan"))

    def to_dict(self) -> dict:
        return {"pair": self.pair, "first_peak_A": round(self.first_peak, 3), "density_per_A3": self.density}


def radial_distribution(
    frames: Sequence[Atoms],
    rmax: float | None = None,
    nbins: int = 200,
    pair: tuple[str, str] | None = None,
) -> RDF:
    """Radial distribution function of a periodic system, vectorised with vesin's neighbour list.

    ``rmax`` defaults to just under half the shortest perpendicular cell width of any frame (so no image is counted
    twice by the minimum-image picture; NPT cells change). ``pair=("O", "H")`` restricts centres to the first element
    and neighbours to the second. The normalisation is the ideal gas of the neighbour species at each frame's
    density, counting the other N-1 atoms for a same-element pair (so g → 1 at large r even in a small box).
    """
    from vesin import NeighborList

    if not frames:
        raise InputError("no frames for the RDF")
    first = frames[0]
    if not np.all(first.pbc):
        raise InputError("the RDF needs a cell periodic in all three directions")
    widths = [a.cell.volume / np.linalg.norm(np.cross(a.cell[[1, 2, 0]], a.cell[[2, 0, 1]]), axis=1) for a in frames]
    rmax = float(rmax) if rmax is not None else 0.49 * float(np.min(widths))
    if rmax <= 0:
        raise InputError(f"rmax must be > 0 Å, got {rmax}")
    edges = np.linspace(0.0, rmax, nbins + 1)
    counts = np.zeros(nbins)
    n_centres_total = 0
    density_sum = 0.0
    pairs_norm = 0.0  # Σ over frames of centres × neighbour density (atoms/Å³)
    nl = NeighborList(cutoff=rmax, full_list=True)
    for atoms in frames:
        symbols = np.array(atoms.get_chemical_symbols())
        centres = np.ones(len(atoms), bool) if pair is None else symbols == pair[0]
        neigh = np.ones(len(atoms), bool) if pair is None else symbols == pair[1]
        i, j, d = nl.compute(points=atoms.positions, box=atoms.cell[:], periodic=True, quantities="ijd")
        sel = centres[i] & neigh[j]
        counts += np.histogram(d[sel], bins=edges)[0]
        n_centres_total += int(centres.sum())
        density_sum += neigh.sum() / atoms.get_volume()
        same = pair is None or pair[0] == pair[1]
        pairs_norm += centres.sum() * (neigh.sum() - same) / atoms.get_volume()
    if n_centres_total == 0:
        raise InputError(f"no atoms of element {pair[0] if pair else '?'} in the trajectory")
    density = density_sum / len(frames)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = counts / (pairs_norm * shell) if pairs_norm > 0 else np.zeros(nbins)
    r = 0.5 * (edges[1:] + edges[:-1])
    coordination = np.cumsum(counts) / n_centres_total
    peak = float(r[np.argmax(g)]) if g.any() else float("nan")
    return RDF(
        r=r,
        g=g,
        coordination=coordination,
        pair="all" if pair is None else f"{pair[0]}-{pair[1]}",
        density=float(density),
        first_peak=peak,
    )


# -- diffusion --------------------------------------------------------------------------------------------


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

    def to_dict(self) -> dict:
        return {"D_cm2_per_s": self.coefficient, "fit_range_fs": list(self.fit_range)}


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
    n = x.shape[0]
    max_lag = n if max_lag is None else min(int(max_lag), n)
    # MSD(k) = <x(t+k)²> + <x(t)²> - 2<x(t)x(t+k)>; the cross term by FFT (Calandrini et al., nMoldyn).
    sq = np.sum(x**2, axis=2)  # (n, n_atoms)
    f = np.fft.rfft(x, n=2 * n, axis=0)
    cross = np.fft.irfft(np.abs(f) ** 2, axis=0)[:n].sum(axis=2)  # (n, n_atoms)
    cross /= (n - np.arange(n))[:, None]
    cumsq = np.concatenate([np.zeros((1, sq.shape[1])), np.cumsum(sq, axis=0)])  # (n+1, n_atoms)
    k = np.arange(n)
    late = cumsq[n][None, :] - cumsq[k]  # sum_{t=k}^{n-1} x_t²
    early = cumsq[n - k]  # sum_{t=0}^{n-k-1} x_t²
    msd = (late + early) / (n - k)[:, None] - 2 * cross
    return np.clip(msd.mean(axis=1)[:max_lag], 0.0, None)


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


# -- plots --------------------------------------------------------------------------------------------------


def trajectory_properties(
    frames: Sequence[Atoms],
    dt: float,
    out_dir: str | Path,
    *,
    potential=None,
    calculator=None,
    reference_calculator=None,
    reference_frequencies: Sequence[float] | None = None,
    equilibrium: Atoms | None = None,
) -> dict:
    """Compute and plot what fits the system: spectrum + harmonic frequencies for a molecule, RDF + diffusion
    for a periodic cell. Returns a JSON-able dict with the numbers and the PNG paths (key ``plots``).

    ``dt``: fs between frames. ``equilibrium``: geometry for harmonic frequencies (default: the first frame);
    ``reference_calculator``: if given, the reference method's harmonic frequencies are computed too;
    ``reference_frequencies`` (cm⁻¹): already known ones (e.g. from the validation), drawn on the plot.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out: dict = {"n_frames": len(frames), "dt_fs": dt, "plots": {}}
    if not frames:
        return out
    if is_molecule(frames[0]):
        out["kind"] = "molecule"
        spec = vibrational_spectrum(frames, dt)
        out["spectrum"] = spec.to_dict()
        harm = ref = None
        geom = equilibrium if equilibrium is not None else frames[0]
        if (potential is not None or calculator is not None) and len(geom) > 1:
            harm = harmonic_frequencies(geom, calculator, potential=potential)
            out["harmonic_cm-1"] = [round(float(f), 1) for f in harm]
        if reference_calculator is not None and len(geom) > 1:
            ref = harmonic_frequencies(geom, reference_calculator)
        elif reference_frequencies is not None and len(reference_frequencies):
            ref = np.asarray(reference_frequencies, dtype=float)
        if ref is not None:
            out["reference_harmonic_cm-1"] = [round(float(f), 1) for f in ref]
        out["plots"]["spectrum"] = str(plot_spectrum(spec, out_dir / "spectrum.png", harm, ref))
        if spec.nyquist < 4000:
            out["warning"] = (
                f"frames are {dt} fs apart: the spectrum stops at {spec.nyquist:.0f} cm⁻¹ and misses "
                "X-H stretches; save frames more often"
            )
    else:
        out["kind"] = "condensed"
        symbols = sorted(set(frames[0].get_chemical_symbols()))
        rdfs = [radial_distribution(frames)]
        if 1 < len(symbols) <= 3:
            rdfs += [radial_distribution(frames, pair=(a, b)) for k, a in enumerate(symbols) for b in symbols[k:]]
        out["rdf"] = [r.to_dict() for r in rdfs]
        out["plots"]["rdf"] = str(plot_rdf(rdfs, out_dir / "rdf.png"))
        if len(frames) >= 10:
            diff = diffusion_coefficient(frames, dt)
            out["diffusion"] = diff.to_dict()
            out["plots"]["msd"] = str(plot_msd(diff, out_dir / "msd.png"))
    return out
