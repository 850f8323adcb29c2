"""Harmonic vibrational frequencies of a molecule: the potential against its own reference method.

Both sides do the same thing: relax the same start geometry (BFGS) with their own forces, then ASE's
:class:`~ase.vibrations.Vibrations` (central finite differences of the forces, ±``delta`` Å) gives the
harmonic frequencies at that minimum. The reference side goes through the labeler's ASE calculator (for
PySCF, DFT forces), so it costs 6N+1 force calls plus the relaxation; its result is cached in the report
directory by (method, hash of the start structure, fmax, delta), so validating a second model on the
same data does not redo the DFT.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.data.hashing import configuration_hash
from mlpkit.validation.checks import FAIL, PASS, SKIP, WARN, CheckResult
from mlpkit.validation.settings import ValidationSettings

CACHE_FILE = "reference_vibrations.json"


@dataclass
class VibrationResult:
    """Harmonic analysis at a relaxed geometry.

    frequencies: vibrational modes only (3N-6, or 3N-5 for linear molecules), cm⁻¹, ascending;
    imaginary modes are given as negative numbers. positions: relaxed geometry (N, 3) Å.
    """

    frequencies: list[float]
    positions: list[list[float]]
    numbers: list[int]
    relax_converged: bool
    relax_steps: int
    final_fmax: float
    seconds: float
    method: str = ""


def is_molecule(atoms: Atoms) -> bool:
    """A finite system: no periodic direction (a vacuum box without PBC counts)."""
    return not bool(atoms.pbc.any())


def _n_zero_modes(atoms: Atoms) -> int:
    """6 for a non-linear molecule, 5 for a linear one (moments of inertia), 3 for an atom."""
    if len(atoms) == 1:
        return 3
    moments = np.sort(atoms.get_moments_of_inertia())
    return 5 if moments[0] < 1e-3 * moments[-1] else 6


def harmonic_frequencies(
    atoms: Atoms, calculator, settings: ValidationSettings, workdir: str | Path, method: str = ""
) -> VibrationResult:
    """Relax ``atoms`` with ``calculator``, then ASE's finite-difference harmonic analysis (see module doc)."""
    from ase.optimize import BFGS
    from ase.vibrations import Vibrations

    start = time.perf_counter()
    a = atoms.copy()
    a.calc = calculator
    opt = BFGS(a, logfile=None)
    converged = bool(opt.run(fmax=settings.relax_fmax, steps=settings.relax_steps))
    final_fmax = float(np.linalg.norm(a.get_forces(), axis=1).max())
    workdir = Path(workdir)
    vib = Vibrations(a, name=str(workdir), delta=settings.vibrations_delta, nfree=2)
    vib.run()
    freqs = np.asarray(vib.get_frequencies())
    # ASE gives complex numbers: real for stable modes, imaginary for unstable ones
    signed = np.where(np.abs(freqs.imag) > np.abs(freqs.real), -np.abs(freqs.imag), freqs.real)
    order = np.argsort(np.abs(signed))
    modes = np.sort(signed[order[_n_zero_modes(a) :]])
    return VibrationResult(
        frequencies=[float(f) for f in modes],
        positions=a.positions.tolist(),
        numbers=a.numbers.tolist(),
        relax_converged=converged,
        relax_steps=int(opt.nsteps),
        final_fmax=final_fmax,
        seconds=time.perf_counter() - start,
        method=method,
    )


def reference_frequencies(
    start: Atoms, labeler, settings: ValidationSettings, cache_dir: str | Path, progress: bool = False
) -> tuple[VibrationResult, bool]:
    """The reference method's frequencies for ``start`` (relaxed with the reference), and whether cached."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_file = cache_dir / CACHE_FILE
    key = (
        f"{labeler.method}|{configuration_hash(start)}|fmax={settings.relax_fmax:g}|delta={settings.vibrations_delta:g}"
    )
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    if key in cache:
        return VibrationResult(**cache[key]), True
    if progress:
        from rich.console import Console

        Console(stderr=True).print(
            f"    reference frequencies with {labeler.method} (cached afterwards)", highlight=False
        )
    labeler.check(start)
    safe = "".join(c if c.isalnum() else "-" for c in labeler.method)
    workdir = cache_dir / f"vib-{safe}-{configuration_hash(start)[:12]}"
    result = harmonic_frequencies(start, labeler.calculator(), settings, workdir, method=labeler.method)
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    cache[key] = asdict(result)
    tmp = cache_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1))
    os.replace(tmp, cache_file)
    return result, False


def _rmsd_aligned(a: np.ndarray, b: np.ndarray, numbers) -> float:
    """RMSD (Å) of two geometries of the same atoms after optimal rotation and translation."""
    from ase.build import minimize_rotation_and_translation

    x = Atoms(numbers=numbers, positions=a)
    y = Atoms(numbers=numbers, positions=b)
    minimize_rotation_and_translation(x, y)
    return float(np.sqrt(np.mean(np.sum((x.positions - y.positions) ** 2, axis=1))))


def check_vibrations(
    potential,
    start: Atoms,
    settings: ValidationSettings,
    reference=None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[CheckResult, dict]:
    """Compare the harmonic frequencies of the potential and of ``reference`` (a Labeler) for a molecule.

    Returns the check row and a dict with both frequency lists (for the report's table and plot).
    """
    s = settings
    title = "Harmonic frequencies vs reference"
    if not is_molecule(start):
        return CheckResult(
            key="vibrations",
            title=title,
            status=SKIP,
            value="periodic system",
            threshold="",
            message="frequencies are compared for molecules only",
        ), {}
    if len(start) > s.vibrations_max_atoms:
        return CheckResult(
            key="vibrations",
            title=title,
            status=SKIP,
            value=f"{len(start)} atoms",
            threshold=f"≤ {s.vibrations_max_atoms} atoms",
            message="molecule too large for a finite-difference Hessian here",
        ), {}
    start = start.copy()
    start.calc = None
    with tempfile.TemporaryDirectory(prefix="mlpkit-vib-") as tmp:
        model = harmonic_frequencies(start, potential.calculator(), s, Path(tmp) / "vib", method="model")
    data: dict = {"model": asdict(model)}
    fm = np.array(model.frequencies)
    if reference is None:
        return CheckResult(
            key="vibrations",
            title=title,
            status=SKIP,
            value="model " + ", ".join(f"{f:.1f}" for f in fm) + " cm⁻¹",
            threshold=f"|Δν| ≤ {s.vibrations_max_deviation:g} cm⁻¹",
            details=data,
            message="no reference method given (--reference), nothing to compare",
        ), data
    ref, cached = reference_frequencies(start, reference, s, cache_dir or tempfile.mkdtemp(), progress=progress)
    fr = np.array(ref.frequencies)
    data["reference"] = asdict(ref)
    data["reference_cached"] = cached
    if len(fr) != len(fm):
        return CheckResult(
            key="vibrations",
            title=title,
            status=FAIL,
            value=f"{len(fm)} vs {len(fr)} modes",
            threshold="",
            details=data,
            message="different numbers of vibrational modes",
        ), data
    dev = np.abs(fm - fr)
    rmsd = _rmsd_aligned(np.array(model.positions), np.array(ref.positions), model.numbers)
    data.update(deviation=dev.tolist(), max_deviation=float(dev.max()), geometry_rmsd=rmsd)
    ok = float(dev.max()) <= s.vibrations_max_deviation
    converged = model.relax_converged and ref.relax_converged
    status = FAIL if not ok else (PASS if converged else WARN)
    message = ""
    if not ok:
        message = f"largest deviation {dev.max():.1f} cm⁻¹ (mode {int(np.argmax(dev)) + 1})"
    elif not converged:
        message = "a relaxation did not reach fmax; frequencies may be off"
    return CheckResult(
        key="vibrations",
        title=title,
        status=status,
        value=f"max |Δν| {dev.max():.1f} cm⁻¹ over {len(fm)} modes; model "
        + "/".join(f"{f:.0f}" for f in fm)
        + " vs "
        + (ref.method or "reference")
        + " "
        + "/".join(f"{f:.0f}" for f in fr)
        + f" cm⁻¹; geometry RMSD {rmsd:.3f} Å",
        threshold=f"|Δν| ≤ {s.vibrations_max_deviation:g} cm⁻¹",
        details=data,
        message=message,
    ), data
