"""Plots (PNG) of the trajectory properties of :mod:`mlpkit.md.properties`: vibrational spectrum, radial
distribution functions, mean-squared displacement. Units as there (cm⁻¹, Å, fs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mlpkit.md.diffusion import Diffusion
    from mlpkit.md.rdf import RDF
    from mlpkit.md.vibrations import VibrationalSpectrum


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_spectrum(
    spec: VibrationalSpectrum,
    path: str | Path,
    harmonic: Sequence[float] | None = None,
    reference: Sequence[float] | None = None,
    fmax: float | None = None,
) -> Path:
    """PNG of the power spectrum, with harmonic frequencies (and a reference's) as vertical lines."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmax = fmax or min(spec.nyquist, 4500.0)
    m = spec.frequencies <= fmax
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110, gridspec_kw={"width_ratios": [2, 1]})
    ax1.plot(spec.frequencies[m], spec.intensity[m], lw=1.2, label="MD power spectrum (VACF)")
    for k, f in enumerate([] if harmonic is None else harmonic):
        ax1.axvline(f, color="C1", ls="--", lw=1, label="harmonic (model)" if k == 0 else None)
    for k, f in enumerate([] if reference is None else reference):
        ax1.axvline(f, color="C2", ls=":", lw=1.2, label="harmonic (reference)" if k == 0 else None)
    for p in spec.peaks:
        if p <= fmax:
            ax1.annotate(
                f"{p:.0f}",
                (p, min(1.0, np.interp(p, spec.frequencies, spec.intensity))),
                textcoords="offset points",
                xytext=(0, 4),
                ha="center",
                fontsize=7,
            )
    ax1.set_xlim(0, fmax)
    ax1.set_ylim(0, 1.15)
    ax1.set_xlabel("wavenumber (cm⁻¹)")
    ax1.set_ylabel("intensity (normalised)")
    ax1.legend(fontsize=8, loc="upper left")
    ax2.plot(spec.vacf_time, spec.vacf, lw=1)
    ax2.set_xlim(0, min(spec.vacf_time[-1], 500))
    ax2.set_xlabel("time (fs)")
    ax2.set_ylabel("VACF (normalised)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_rdf(rdfs: Sequence[RDF], path: str | Path) -> Path:
    """PNG of one or more g(r) curves (with the running coordination number of the first on a second axis)."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=110)
    for rdf in rdfs:
        ax.plot(rdf.r, rdf.g, lw=1.3, label=f"g(r) {rdf.pair}")
    ax.axhline(1.0, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("g(r)")
    if rdfs:
        ax2 = ax.twinx()
        ax2.plot(rdfs[0].r, rdfs[0].coordination, color="k", lw=0.8, ls="--", label=f"n(r) {rdfs[0].pair}")
        ax2.set_ylabel("coordination n(r)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_msd(diff: Diffusion, path: str | Path) -> Path:
    """PNG of the MSD with the fitted line and D."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=110)
    ax.plot(diff.lag / 1000, diff.msd, lw=1.2, label="MSD")
    t0, t1 = diff.fit_range
    t = np.linspace(t0, t1, 20)
    ax.plot(t / 1000, diff.slope * t + diff.intercept, "r--", lw=1.5, label=f"fit: D = {diff.coefficient:.3g} cm²/s")
    ax.set_xlabel("lag time (ps)")
    ax.set_ylabel("MSD (Å²)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# -- one call for the pipeline -------------------------------------------------------------------------------
