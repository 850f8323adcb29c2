"""Properties from an MD trajectory, chosen by the system: vibrational spectrum and harmonic frequencies for
molecules, radial distribution function and diffusion coefficient for condensed systems, and their plots (PNG).

The computations live in :mod:`mlpkit.md.vibrations`, :mod:`mlpkit.md.rdf` and :mod:`mlpkit.md.diffusion` (their
names are re-exported here); the plots in :mod:`mlpkit.md.plots`.

Units: positions Å, velocities Å/fs, times fs, frequencies cm⁻¹, diffusion coefficients cm²/s
(1 Å²/fs = 0.1 cm²/s). A trajectory is a list of ``ase.Atoms`` frames equally spaced in time by
``dt`` fs (ASE trajectories keep the momenta, so velocities come from ``Atoms.get_velocities``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.md.diffusion import (
    A2_PER_FS_IN_CM2_PER_S,
    Diffusion,
    diffusion_coefficient,
    mean_squared_displacement,
    unwrap_positions,
)
from mlpkit.md.plots import plot_msd, plot_rdf, plot_spectrum
from mlpkit.md.rdf import RDF, radial_distribution
from mlpkit.md.vibrations import (
    C_CM_PER_FS,
    VibrationalSpectrum,
    harmonic_frequencies,
    is_molecule,
    vibrational_spectrum,
)

__all__ = [
    "A2_PER_FS_IN_CM2_PER_S",
    "C_CM_PER_FS",
    "RDF",
    "Diffusion",
    "VibrationalSpectrum",
    "diffusion_coefficient",
    "harmonic_frequencies",
    "is_molecule",
    "mean_squared_displacement",
    "radial_distribution",
    "trajectory_properties",
    "unwrap_positions",
    "vibrational_spectrum",
]


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
