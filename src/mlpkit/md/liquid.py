"""Properties of a liquid in a periodic box from an MD trajectory: partial RDFs of every element pair, the
self-diffusion coefficient with the Yeh-Hummer finite-size correction, the density time series of an NPT run, and
the vibrational density of states from the velocities; plus :func:`condensed_properties`, which computes and plots
all that fits a trajectory (what a report shows for a periodic system).

Units: positions Å, times fs, densities g/cm³, diffusion coefficients cm²/s (1e-5 cm²/s = 1e-9 m²/s), viscosity
Pa·s (water at 25 °C: 0.89 mPa·s = 0.89e-3 Pa·s), temperatures K.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError
from mlpkit.md.diffusion import Diffusion, diffusion_coefficient, unwrap_positions
from mlpkit.md.plots import _pyplot, plot_msd, plot_rdf, plot_spectrum
from mlpkit.md.rdf import RDF, radial_distribution
from mlpkit.md.vibrations import vibrational_spectrum

#: Yeh & Hummer, J. Phys. Chem. B 108, 15873 (2004): the cubic-lattice constant of D∞ = D_PBC + kT ξ / (6π η L)
YEH_HUMMER_XI = 2.837297
#: Pa·s, shear viscosity of water at 25 °C (the default of the correction)
WATER_VISCOSITY = 0.89e-3
BOLTZMANN_J_PER_K = 1.380649e-23
#: atom pairs (within the RDF's range, summed over frames) the RDFs of :func:`condensed_properties` count at most:
#: a 48-atom box's 10,000 frames hold ~1e7 (all frames used); 3,000 waters to 15 Å hold ~4e6 per frame, ~1.3 s of
#: CPU per frame for the four RDFs, so a long run of a large box is strided to ~25 frames spread over the run
RDF_PAIR_BUDGET = 1e8
#: g/cm³ per amu/Å³
AMU_PER_A3_IN_G_PER_CM3 = 1.66053906660


def partial_rdfs(frames: Sequence[Atoms], *, rmax: float | None = None, nbins: int = 200) -> dict[str, RDF]:
    """g(r) of every unordered element pair, heavier element (the centres) first ('O-O', 'O-H', 'H-H' for water),
    and of all atoms ('all'), each normalised by the ideal gas of its neighbour species (see
    :func:`mlpkit.md.rdf.radial_distribution`)."""
    if not frames:
        raise InputError("no frames for the RDFs")
    from ase.data import atomic_masses, atomic_numbers

    # heavier element first: 'O-H' (H around each O: coordination 2 in water), 'O-O', 'H-H'
    symbols = sorted(set(frames[0].get_chemical_symbols()), key=lambda s: (-atomic_masses[atomic_numbers[s]], s))
    out = {"all": radial_distribution(frames, rmax=rmax, nbins=nbins)}
    for k, a in enumerate(symbols):
        for b in symbols[k:]:
            out[f"{a}-{b}"] = radial_distribution(frames, rmax=rmax, nbins=nbins, pair=(a, b))
    return out


def first_peak_height(rdf: RDF) -> float:
    """g(r) at the first peak (the bin nearest ``rdf.first_peak``; NaN without a peak)."""
    if not np.isfinite(rdf.first_peak) or len(rdf.r) == 0:
        return float("nan")
    return round(float(rdf.g[int(np.argmin(np.abs(rdf.r - rdf.first_peak)))]), 3)


def write_rdfs(rdfs: dict[str, RDF], path: str | Path) -> Path:
    """The g(r) curves as JSON ({pair: {"r_A": [...], "g": [...], "first_peak_A", "first_peak_height"}}), so another
    run's RDFs (the reference method's MD of the same box) can be compared bin by bin."""
    from mlpkit.files import atomic_write_json

    data = {
        pair: {
            "r_A": [round(float(x), 4) for x in r.r],
            "g": [round(float(x), 5) for x in r.g],
            "first_peak_A": float(r.first_peak),
            "first_peak_height": first_peak_height(r),
        }
        for pair, r in rdfs.items()
    }
    path = Path(path)
    atomic_write_json(path, data)
    return path


def yeh_hummer_correction(temperature: float, box_length: float, viscosity: float = WATER_VISCOSITY) -> float:
    """cm²/s to add to a diffusion coefficient from a cubic periodic box: k_B T ξ / (6π η L).

    temperature: K; box_length: L in Å; viscosity: η in Pa·s. (Water, 298 K, L = 10 Å: 6.96e-6 cm²/s.)
    """
    if temperature <= 0 or box_length <= 0 or viscosity <= 0:
        raise InputError(
            f"need temperature, box length and viscosity > 0, got {temperature}, {box_length}, {viscosity}"
        )
    metres = BOLTZMANN_J_PER_K * temperature * YEH_HUMMER_XI / (6 * np.pi * viscosity * box_length * 1e-10)
    return float(metres * 1e4)  # m²/s → cm²/s


@dataclass
class SelfDiffusion:
    """D_PBC from the box (cm²/s), its Yeh-Hummer correction and the infinite-box estimate D∞ = D_PBC + correction.

    box_length: Å (mean over frames; the cube root of the volume for a non-cubic cell); viscosity: Pa·s; temperature: K.
    """

    diffusion: Diffusion
    correction: float
    box_length: float
    temperature: float
    viscosity: float

    @property
    def periodic(self) -> float:
        return self.diffusion.coefficient

    @property
    def infinite(self) -> float:
        return self.diffusion.coefficient + self.correction

    def to_dict(self) -> dict:
        return {
            "D_pbc_cm2_per_s": self.periodic,
            "yeh_hummer_correction_cm2_per_s": self.correction,
            "D_infinite_cm2_per_s": self.infinite,
            "box_length_A": self.box_length,
            "temperature_K": self.temperature,
            "viscosity_Pa_s": self.viscosity,
            "fit_range_fs": list(self.diffusion.fit_range),
            "msd_exponent": self.diffusion.exponent,
            "warning": self.diffusion.regime_warning(),
        }


def self_diffusion(
    frames: Sequence[Atoms],
    dt: float,
    *,
    temperature: float,
    viscosity: float = WATER_VISCOSITY,
    element: str | None = None,
    fit_window: tuple[float, float] = (0.2, 0.6),
) -> SelfDiffusion:
    """Einstein self-diffusion coefficient of ``element``'s atoms (all atoms if None; 'O' for water molecules'
    centres) with the Yeh-Hummer finite-size correction at ``temperature`` K and ``viscosity`` Pa·s.

    The centre of mass of the whole box is held still first (a Langevin thermostat without ``FixCom``, as under NPT,
    lets it wander; that drift is not diffusion). The correction is derived for cubic cells; for another shape the
    cube root of the volume stands in for L.
    """
    if not frames or not np.all(frames[0].pbc):
        raise InputError("self-diffusion with the finite-size correction needs a periodic trajectory")
    select = None
    if element is not None:
        select = np.array(frames[0].get_chemical_symbols()) == element
        if not select.any():
            raise InputError(f"no {element} atoms in the trajectory")
    positions = unwrap_positions(frames)
    masses = frames[0].get_masses()
    positions = positions - (np.einsum("a,tai->ti", masses, positions) / masses.sum())[:, None, :]
    diff = diffusion_coefficient(None, dt, positions=positions, select=select, fit_window=fit_window)
    length = float(np.mean([a.get_volume() for a in frames]) ** (1 / 3))
    return SelfDiffusion(
        diffusion=diff,
        correction=yeh_hummer_correction(temperature, length, viscosity),
        box_length=length,
        temperature=float(temperature),
        viscosity=float(viscosity),
    )


@dataclass
class DensitySeries:
    """time: (n,) fs; density: (n,) g/cm³; mean and its standard error (g/cm³) by block averaging (correlated
    frames), from the frames after ``skip`` (equilibration)."""

    time: np.ndarray
    density: np.ndarray
    mean: float
    standard_error: float
    skip: int

    def to_dict(self) -> dict:
        return {
            "mean_g_per_cm3": self.mean,
            "standard_error_g_per_cm3": self.standard_error,
            "min_g_per_cm3": float(self.density.min()),
            "max_g_per_cm3": float(self.density.max()),
            "frames_averaged": int(len(self.density) - self.skip),
        }


def density_series(frames: Sequence[Atoms], dt: float, *, skip_fraction: float = 0.2) -> DensitySeries:
    """Mass density (g/cm³) of every frame of a periodic trajectory ``dt`` fs apart; the mean leaves out the first
    ``skip_fraction`` of the run (equilibration of the volume)."""
    if not frames or not np.all(frames[0].pbc):
        raise InputError("a density needs periodic frames")
    mass = frames[0].get_masses().sum()
    rho = np.array([mass / a.get_volume() for a in frames]) * AMU_PER_A3_IN_G_PER_CM3
    skip = int(skip_fraction * len(rho))
    mean, sem = block_average(rho[skip:])
    return DensitySeries(time=np.arange(len(rho)) * dt, density=rho, mean=mean, standard_error=sem, skip=skip)


def block_average(x: np.ndarray, n_blocks: int = 8) -> tuple[float, float]:
    """Mean of a correlated series and its standard error from ``n_blocks`` contiguous blocks (Flyvbjerg-Petersen
    with a fixed block count: blocks longer than the correlation time are independent)."""
    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return float("nan"), float("nan")
    nb = min(n_blocks, len(x))
    if nb < 2:
        return float(x.mean()), float("nan")
    blocks = np.array([b.mean() for b in np.array_split(x, nb)])
    return float(x.mean()), float(blocks.std(ddof=1) / np.sqrt(nb))


def plot_density(series: DensitySeries, path: str | Path) -> Path:
    """PNG of the density time series with its mean (after equilibration)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(series.time / 1000.0, series.density, lw=1)
    ax.axhline(series.mean, color="k", ls="--", lw=1, label=f"{series.mean:.4f} ± {series.standard_error:.4f} g/cm³")
    if series.skip:
        ax.axvspan(0, series.time[series.skip] / 1000.0, color="0.9", label="equilibration (not averaged)")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("density (g/cm³)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def condensed_properties(
    frames: Sequence[Atoms],
    dt: float,
    out_dir: str | Path,
    *,
    temperature: float | None = None,
    viscosity: float = WATER_VISCOSITY,
    diffusing_element: str | None = None,
    rdf_pairs: float = RDF_PAIR_BUDGET,
) -> dict:
    """RDFs (all and per element pair), self-diffusion with the Yeh-Hummer correction (≥ 10 frames), the density
    series (when the cell changes, i.e. NPT) and the VDOS (when the frames carry velocities and ≥ 8 of them) of a
    periodic trajectory, with PNG plots. Returns a JSON-able dict; its ``plots`` maps names to PNG paths.

    temperature: K for the correction (default: the frames' ``target_temperature`` info, else their mean kinetic
    temperature); viscosity: Pa·s (default water's); diffusing_element: whose atoms diffuse (default: the heaviest
    element with more than one atom, O for water; molecules move with it); rdf_pairs: at most this many atom pairs
    enter the RDFs (:func:`rdf_stride`: every frame of a small box, evenly spread frames of a large one).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out: dict = {"kind": "condensed", "n_frames": len(frames), "dt_fs": dt, "plots": {}}
    if not frames:
        return out
    stride = rdf_stride(frames, rdf_pairs)
    rdfs = partial_rdfs(frames[::stride])
    out["rdf_frames"] = len(frames[::stride])
    out["rdf"] = [{**r.to_dict(), "first_peak_height": first_peak_height(r)} for r in rdfs.values()]
    out["plots"]["rdf"] = str(plot_rdf(list(rdfs.values()), out_dir / "rdf.png"))
    out["files"] = {"rdf": str(write_rdfs(rdfs, out_dir / "rdf.json"))}
    if len(frames) >= 10:
        if temperature is None:
            temperature = frames[0].info.get("target_temperature") or float(
                np.mean([a.get_temperature() for a in frames])
            )
        element = diffusing_element or _heaviest_repeated_element(frames[0])
        sd = self_diffusion(frames, dt, temperature=float(temperature), viscosity=viscosity, element=element)
        out["diffusion"] = {"D_cm2_per_s": sd.periodic, **sd.to_dict(), "element": element}
        out["plots"]["msd"] = str(plot_msd(sd.diffusion, out_dir / "msd.png"))
    volumes = np.array([a.get_volume() for a in frames])
    if np.ptp(volumes) > 1e-9 * volumes.mean():
        series = density_series(frames, dt)
        out["density"] = series.to_dict()
        out["plots"]["density"] = str(plot_density(series, out_dir / "density.png"))
    if len(frames) >= 8 and np.any(frames[0].get_momenta()):
        spec = vibrational_spectrum(frames, dt)
        out["vdos"] = spec.to_dict()
        out["plots"]["vdos"] = str(plot_spectrum(spec, out_dir / "vdos.png"))
    return out


def rdf_stride(frames: Sequence[Atoms], budget: float = RDF_PAIR_BUDGET) -> int:
    """Every how many frames the RDFs need, so that the pairs they count (atoms x neighbours within the default
    range, 0.49 of the shortest cell width, at the first frame's density) stay within ``budget``; 1 for all."""
    first = frames[0]
    widths = first.cell.volume / np.linalg.norm(np.cross(first.cell[[1, 2, 0]], first.cell[[2, 0, 1]]), axis=1)
    rmax = 0.49 * float(np.min(widths))
    pairs = len(first) * len(first) / first.get_volume() * 4.0 / 3.0 * np.pi * rmax**3
    return max(1, int(np.ceil(len(frames) * pairs / budget)))


def _heaviest_repeated_element(atoms: Atoms) -> str:
    symbols, counts = np.unique(atoms.get_chemical_symbols(), return_counts=True)
    masses = {s: m for s, m in zip(atoms.get_chemical_symbols(), atoms.get_masses(), strict=True)}
    repeated = [s for s, c in zip(symbols, counts, strict=True) if c > 1] or list(symbols)
    return max(repeated, key=lambda s: masses[s])
