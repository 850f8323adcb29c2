"""Normal-mode sampling: displacements along the harmonic modes, drawn from the classical Boltzmann distribution."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units

from mlpkit.data.structures import check_structure
from mlpkit.errors import InputError
from mlpkit.sampling.md import as_calculator

#: Modes softer than this (cm⁻¹) are treated as translations/rotations or numerical noise and not sampled:
#: their classical amplitude sqrt(kT)/ω would blow up.
MIN_FREQUENCY_CM = 50.0


@dataclass(frozen=True)
class HarmonicModes:
    """Harmonic analysis of a structure.

    frequencies_cm: (n_modes,) wavenumbers (cm⁻¹) of the sampled vibrations, ascending.
    modes: (n_modes, n_atoms, 3) orthonormal mass-weighted eigenvectors (dimensionless).
    omega2: (n_modes,) eigenvalues of the mass-weighted Hessian, eV/(Å² amu).
    masses: (n_atoms,) amu.
    skipped_cm: wavenumbers (cm⁻¹, negative = imaginary) of vibrational modes left out (too soft or unstable).
    """

    frequencies_cm: np.ndarray
    modes: np.ndarray
    omega2: np.ndarray
    masses: np.ndarray
    skipped_cm: np.ndarray


def _rigid_body_vectors(atoms: Atoms, masses: np.ndarray) -> np.ndarray:
    """Orthonormal mass-weighted translation (and, for molecules, rotation) vectors, shape (k, 3n)."""
    n = len(atoms)
    sqm = np.sqrt(masses)
    vecs = []
    for axis in range(3):
        t = np.zeros((n, 3))
        t[:, axis] = sqm
        vecs.append(t.ravel())
    if not atoms.pbc.any():
        com = atoms.get_center_of_mass()
        r = atoms.positions - com
        for axis in range(3):
            e = np.zeros(3)
            e[axis] = 1.0
            vecs.append((np.cross(e, r) * sqm[:, None]).ravel())
    basis = np.array(vecs).T
    u, s, _ = np.linalg.svd(basis, full_matrices=False)
    return u[:, s > 1e-6 * s.max()].T  # a linear molecule has only two rotations


def harmonic_modes(atoms: Atoms, calculator, *, delta: float = 0.01) -> HarmonicModes:
    """Finite-difference Hessian (ase.vibrations, central differences of ``delta`` Å) and its normal modes.

    Translations and (for molecules) rotations are projected out of the mass-weighted Hessian before it is
    diagonalised. The structure should be a minimum of ``calculator``'s energy; modes with imaginary or
    very low frequency (< ``MIN_FREQUENCY_CM``) are reported in ``skipped_cm`` and not sampled.
    """
    from ase.vibrations import Vibrations

    check_structure(atoms)
    work = atoms.copy()
    work.calc = as_calculator(calculator)
    with tempfile.TemporaryDirectory(prefix="mlpkit-vib-") as tmp:
        vib = Vibrations(work, name=f"{tmp}/vib", delta=delta, nfree=2)
        vib.run()
        hessian = vib.get_vibrations().get_hessian_2d()  # eV/Å², (3n, 3n)
    masses = work.get_masses()
    inv_sqm = np.repeat(1.0 / np.sqrt(masses), 3)
    mw = hessian * inv_sqm[:, None] * inv_sqm[None, :]
    mw = 0.5 * (mw + mw.T)
    rigid = _rigid_body_vectors(work, masses)
    proj = np.eye(len(mw)) - rigid.T @ rigid
    mw = proj @ mw @ proj
    omega2, vecs = np.linalg.eigh(mw)
    # Drop as many near-zero eigenvalues as there are rigid-body motions (their eigenvectors lie in that space).
    overlap = np.linalg.norm(rigid @ vecs, axis=0)
    vib_mask = overlap < 0.5
    omega2, vecs = omega2[vib_mask], vecs[:, vib_mask]
    # eigh's sign of each eigenvector is arbitrary and can flip with round-off (a threaded calculator is not
    # bitwise reproducible); fix it so a seed always gives the same displacements
    largest = np.argmax(np.abs(vecs), axis=0)
    vecs = vecs * np.sign(vecs[largest, np.arange(vecs.shape[1])])
    # ω² in eV/(Å² amu) -> ω in rad/s (SI) -> wavenumber ω / (2π c) in cm⁻¹
    to_cm = np.sqrt(units._e / (1e-20 * units._amu)) / (2 * np.pi * units._c * 100)
    wavenumbers = np.sign(omega2) * np.sqrt(np.abs(omega2)) * to_cm
    keep = wavenumbers >= MIN_FREQUENCY_CM
    return HarmonicModes(
        frequencies_cm=wavenumbers[keep],
        modes=vecs[:, keep].T.reshape(-1, len(work), 3),
        omega2=omega2[keep],
        masses=masses,
        skipped_cm=wavenumbers[~keep],
    )


def normal_mode_sampling(atoms: Atoms, calculator, n: int, temperature: float, seed: int = 0) -> list[Atoms]:
    """``n`` configurations displaced along the harmonic normal modes of ``atoms`` at ``temperature`` (K).

    Each mass-weighted normal coordinate q_k (Å·amu^½) is drawn independently from the classical Boltzmann
    distribution of a harmonic oscillator, a Gaussian of variance k_B T / ω_k²; Cartesian displacements
    are x = M^-½ Σ_k q_k e_k. Seeded. Each frame has ``info`` ``source`` (``normal-modes-300K``),
    ``temperature`` and ``nms_index``.
    """
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    if not temperature > 0:
        raise InputError(f"temperature must be positive (K), got {temperature}")
    hm = harmonic_modes(atoms, calculator)
    if len(hm.omega2) == 0:
        raise InputError("the structure has no stable vibrational modes to sample (is it a minimum?)")
    rng = np.random.default_rng(seed)
    kT = units.kB * temperature
    sigma = np.sqrt(kT / hm.omega2)  # Å·amu^½ per mode
    out: list[Atoms] = []
    inv_sqm = 1.0 / np.sqrt(hm.masses)[:, None]
    source = f"normal-modes-{temperature:g}K"
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 10 * n + 100:
            raise InputError(
                f"normal-mode displacements at {temperature:g} K keep putting atoms on top of each "
                "other; use a lower temperature"
            )
        q = rng.normal(size=len(sigma)) * sigma
        disp = np.einsum("k,kij->ij", q, hm.modes) * inv_sqm
        new = Atoms(numbers=atoms.numbers, positions=atoms.positions + disp, cell=atoms.cell, pbc=atoms.pbc)
        try:
            check_structure(new)
        except InputError:
            continue  # an extreme draw that merged two atoms; the Boltzmann tail is not worth labelling
        new.info.update(source=source, temperature=float(temperature), nms_index=len(out), seed=int(seed))
        out.append(new)
    return out
