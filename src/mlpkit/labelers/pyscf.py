"""Kohn-Sham DFT for molecules with PySCF: the default reference method (``pyscf:PBE/def2-SVP``).

Restricted KS for closed shells, unrestricted KS when ``spin`` (2S = N_alpha - N_beta) > 0, tight SCF
convergence and analytic nuclear gradients. PySCF works in Hartree and Bohr; every number leaving this
module is in eV and eV/Å (``ase.units``).

Nearby geometries (MD snapshots, rattled copies) are labelled faster (~25% for water, fewer SCF cycles)
when the SCF starts from the density matrix of the previous one instead of PySCF's atomic guess, so each
process keeps the last converged density matrix per (atomic numbers, method settings) in a module-level
cache. Dask workers are long-lived processes, so the cache carries over between the labels a worker runs.

A calculation that does not converge is retried with damping and a level shift from a fresh guess, then
with the second-order (Newton) solver; if that also fails the label is a :class:`LabelFailure` with the
reason, and never a number.
"""

from __future__ import annotations

import os
import warnings
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.units import Bohr, Hartree

from mlpkit.errors import InputError, LabelFailure, UnsupportedSpeciesError
from mlpkit.labelers.base import Labeler

#: (numbers, settings) -> (positions in Å (n, 3), converged density matrix). One entry per molecule and
#: method; the density matrix of a water molecule in def2-SVP is 24x24 doubles, so this stays tiny.
_GUESS_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

#: A cached density matrix is used as the starting guess only if no atom moved more than this (Å) relative
#: to the cached geometry (after removing the centroid shift). Beyond that a fresh guess is as good and
#: safer (a rotated molecule's density matrix in the AO basis is not a good guess).
GUESS_REUSE_MAX_SHIFT = 0.75


def clear_guess_cache() -> None:
    """Forget every cached SCF guess in this process (tests, or after changing settings by hand)."""
    _GUESS_CACHE.clear()


def canonical_basis_name(name: str) -> str:
    """One spelling per basis set: ``def2-svp`` -> ``def2-SVP``, ``aug-cc-pvdz`` -> ``aug-cc-pVDZ``,
    ``sto-3g`` -> ``STO-3G``, ``6-31g*`` -> ``6-31G*``."""
    low = name.strip().lower()
    if low.startswith("def2-"):
        return "def2-" + low[5:].upper()
    if "cc-p" in low:
        head, _, tail = low.partition("cc-p")
        return f"{head}cc-p{tail.upper()}"
    return low.upper()


class PySCFLabeler(Labeler):
    """PySCF Kohn-Sham DFT energies (eV) and analytic forces (eV/Å) for non-periodic molecules.

    Parameters
    ----------
    xc:
        Exchange-correlation functional in PySCF/libxc notation (``PBE``, ``B3LYP``, ``wB97X-V``...).
    basis:
        Gaussian basis set name (``def2-SVP``, ``def2-TZVP``, ``cc-pVDZ``...); def2 effective core
        potentials are added automatically for elements that have them (Rb and heavier).
    charge, spin:
        Total charge and 2S (number of unpaired electrons); ``spin > 0`` switches to unrestricted KS.
    conv_tol:
        SCF energy convergence (Hartree). 1e-10 keeps the forces converged to ~1e-5 eV/Å.
    grid_level:
        PySCF's integration grid level (0-9, default 3).
    density_fit:
        Resolution-of-identity for the Coulomb term (faster for big molecules; changes energies by
        ~1e-5 Hartree, so it is part of the method string).
    max_cycle:
        SCF iterations per attempt.
    threads:
        OpenMP threads for PySCF during each calculation; ``None`` keeps ``OMP_NUM_THREADS`` (or PySCF's
        default: all cores). Dask workers get ``OMP_NUM_THREADS = cores // workers`` from the runner.
    reuse_guess:
        Start each SCF from the cached density matrix of the last nearby geometry.
    max_memory:
        PySCF's memory budget in MB.
    grid_response:
        Include the response of the integration grid in the gradient, making the forces the exact
        derivative of the energy (otherwise they differ by ~1e-4 eV/Å at grid level 3; costs ~2x the
        gradient time). Off by default, as in PySCF and the shared reference data.
    """

    name = "pyscf"
    computes_stress: ClassVar[bool] = False

    def __init__(
        self,
        xc: str = "PBE",
        basis: str = "def2-SVP",
        charge: int = 0,
        spin: int = 0,
        conv_tol: float = 1e-10,
        grid_level: int = 3,
        density_fit: bool = False,
        max_cycle: int = 100,
        threads: int | None = None,
        reuse_guess: bool = True,
        max_memory: int = 4000,
        grid_response: bool = False,
    ):
        import pyscf  # noqa: F401  (fail here, with the registry's install hint, if PySCF is missing)

        if not xc or not isinstance(xc, str):
            raise InputError("xc must be a functional name such as 'PBE'")
        if not basis or not isinstance(basis, str):
            raise InputError("basis must be a basis-set name such as 'def2-SVP'")
        if int(spin) < 0:
            raise InputError(f"spin is 2S = N_alpha - N_beta and cannot be negative, got {spin}")
        if not 0 <= int(grid_level) <= 9:
            raise InputError(f"grid_level must be 0-9, got {grid_level}")
        if not float(conv_tol) > 0:
            raise InputError(f"conv_tol must be positive, got {conv_tol}")
        if threads is not None and int(threads) < 1:
            raise InputError(f"threads must be at least 1, got {threads}")
        # PySCF reads both case-insensitively; one spelling keeps one method string per level of theory
        self.xc = xc.upper()
        self.basis = canonical_basis_name(basis)
        self.charge = int(charge)
        self.spin = int(spin)
        self.conv_tol = float(conv_tol)
        self.grid_level = int(grid_level)
        self.density_fit = bool(density_fit)
        self.max_cycle = int(max_cycle)
        self.threads = None if threads is None else int(threads)
        self.reuse_guess = bool(reuse_guess)
        self.max_memory = int(max_memory)
        self.grid_response = bool(grid_response)
        self._supported: dict[int, bool] = {}
        self._check_xc()
        self._check_basis(basis)

    # -- identity ---------------------------------------------------------------------------------------

    @property
    def method(self) -> str:
        """``pyscf:PBE/def2-SVP``, plus ``[...]`` for settings that change the numbers (charge, spin, DF, grid)."""
        extras = []
        if self.charge:
            extras.append(f"charge={self.charge}")
        if self.spin:
            extras.append(f"spin={self.spin}")
        if self.density_fit:
            extras.append("df")
        if self.grid_level != 3:
            extras.append(f"grid={self.grid_level}")
        return f"pyscf:{self.xc}/{self.basis}" + (f"[{','.join(extras)}]" if extras else "")

    def _spec_kwargs(self) -> dict:
        return {
            "xc": self.xc,
            "basis": self.basis,
            "charge": self.charge,
            "spin": self.spin,
            "conv_tol": self.conv_tol,
            "grid_level": self.grid_level,
            "density_fit": self.density_fit,
            "max_cycle": self.max_cycle,
            "threads": self.threads,
            "reuse_guess": self.reuse_guess,
            "max_memory": self.max_memory,
            "grid_response": self.grid_response,
        }

    def _settings_key(self) -> tuple:
        return (self.xc.upper(), self.basis.lower(), self.charge, self.spin, self.grid_level, self.density_fit)

    # -- input checks -----------------------------------------------------------------------------------

    def _check_xc(self) -> None:
        from pyscf.dft import libxc

        try:
            libxc.parse_xc(self.xc)
        except Exception as exc:  # KeyError/ValueError depending on the token
            raise InputError(f"PySCF does not know the functional {self.xc!r}: {exc}") from exc

    def _check_basis(self, given: str) -> None:
        from pyscf import gto

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gto.basis.load(self.basis, "H")
        except Exception as exc:
            if "unknown basis" in str(exc).lower():
                raise InputError(f"PySCF does not know the basis set {given!r}") from exc
            # a known basis without hydrogen: elements are checked per structure

    def _element_supported(self, z: int) -> bool:
        if z not in self._supported:
            from ase.data import chemical_symbols
            from pyscf import gto

            try:
                with warnings.catch_warnings():  # PySCF suggests basis-set-exchange on every miss
                    warnings.simplefilter("ignore")
                    self._supported[z] = bool(gto.basis.load(self.basis, chemical_symbols[z]))
            except Exception:  # BasisNotFoundError, or a KeyError for exotic names
                self._supported[z] = False
        return self._supported[z]

    def check(self, atoms: Atoms) -> None:
        """Refuse periodic cells, elements the basis lacks, and impossible charge/spin combinations."""
        super().check(atoms)
        if np.any(atoms.pbc):
            raise InputError(
                "the pyscf labeler handles molecules only (pbc must be False in every direction); "
                "for periodic cells use the 'gpaw' or 'gfn2' method, or any periodic code via the 'ase' method"
            )
        from ase.data import chemical_symbols

        bad = sorted({int(z) for z in atoms.numbers if not self._element_supported(int(z))})
        if bad:
            raise UnsupportedSpeciesError(
                f"basis {self.basis} has no functions for element(s) {', '.join(chemical_symbols[z] for z in bad)}; "
                "choose a basis that covers them"
            )
        n_electrons = int(atoms.numbers.sum()) - self.charge  # ECPs remove electrons in pairs: parity kept
        if n_electrons <= 0:
            raise InputError(f"charge {self.charge} leaves {n_electrons} electrons")
        if (n_electrons - self.spin) % 2:
            raise InputError(
                f"{atoms.get_chemical_formula()} with charge {self.charge} has {n_electrons} electrons, which "
                f"cannot have spin (2S) = {self.spin}; use an {'even' if n_electrons % 2 == 0 else 'odd'} spin"
            )

    # -- the calculation --------------------------------------------------------------------------------

    def _mole(self, atoms: Atoms):
        from ase.data import chemical_symbols
        from pyscf import gto

        symbols = [chemical_symbols[z] for z in atoms.numbers]
        ecp = {}
        for s in set(symbols):
            try:
                if gto.basis.load_ecp(self.basis, s):
                    ecp[s] = self.basis
            except Exception:  # no ECP data for this basis/element: all-electron
                pass
        mol = gto.Mole()
        mol.atom = [(s, tuple(p)) for s, p in zip(symbols, atoms.positions, strict=True)]
        mol.unit = "Angstrom"
        mol.basis = self.basis
        mol.ecp = ecp
        mol.charge = self.charge
        mol.spin = self.spin
        mol.verbose = 0
        mol.max_memory = self.max_memory
        mol.output = os.devnull
        mol.build()
        return mol

    def _new_scf(self, mol):
        from pyscf import dft

        mf = dft.UKS(mol) if self.spin > 0 else dft.RKS(mol)
        mf.xc = self.xc
        mf.conv_tol = self.conv_tol
        mf.max_cycle = self.max_cycle
        mf.grids.level = self.grid_level
        mf.verbose = 0
        if self.density_fit:
            mf = mf.density_fit()
        return mf

    def _cached_guess(self, atoms: Atoms) -> np.ndarray | None:
        if not self.reuse_guess:
            return None
        entry = _GUESS_CACHE.get((tuple(int(z) for z in atoms.numbers), self._settings_key()))
        if entry is None:
            return None
        positions, dm = entry
        a = atoms.positions - atoms.positions.mean(axis=0)
        b = positions - positions.mean(axis=0)
        if np.max(np.linalg.norm(a - b, axis=1)) > GUESS_REUSE_MAX_SHIFT:
            return None
        return dm

    def _run_scf(self, mol, atoms: Atoms):
        """Converge the SCF, escalating through the retry ladder. Returns the converged mean-field object."""
        attempts: list[str] = []
        dm0 = self._cached_guess(atoms)

        # 1. plain DIIS from the cached density (or PySCF's default minao guess)
        mf = self._new_scf(mol)
        e = mf.kernel(dm0=dm0)
        if mf.converged:
            return mf
        attempts.append(
            f"DIIS from {'the cached' if dm0 is not None else 'a fresh'} guess: not converged "
            f"in {self.max_cycle} cycles (E = {e:.8f} Ha)"
        )

        # 2. fresh guess, damping and a level shift (helps oscillating or small-gap cases)
        mf = self._new_scf(mol)
        mf.damp = 0.5
        mf.diis_start_cycle = 4
        mf.level_shift = 0.3
        mf.max_cycle = 2 * self.max_cycle
        e = mf.kernel()
        if mf.converged:
            return mf
        attempts.append(
            f"damping 0.5 + level shift 0.3 Ha: not converged in {2 * self.max_cycle} cycles (E = {e:.8f} Ha)"
        )

        # 3. second-order (co-iterative augmented Hessian) solver, starting from attempt 2's orbitals
        mf2 = self._new_scf(mol).newton()
        mf2.max_cycle = self.max_cycle
        e = mf2.kernel(mf.mo_coeff, mf.mo_occ)
        if mf2.converged:
            return mf2
        attempts.append(f"second-order (Newton) solver: not converged in {self.max_cycle} cycles (E = {e:.8f} Ha)")
        raise LabelFailure(
            f"SCF did not converge for {atoms.get_chemical_formula()} ({self.method}, conv_tol {self.conv_tol:g}): "
            + "; ".join(attempts)
        )

    def _compute(self, atoms: Atoms) -> tuple[float, np.ndarray, None]:
        if self.threads is None:
            return self._compute_threads(atoms)
        from pyscf import lib

        previous = lib.num_threads()
        lib.num_threads(self.threads)  # for this calculation only; the process keeps its own setting
        try:
            return self._compute_threads(atoms)
        finally:
            lib.num_threads(previous)

    def _compute_threads(self, atoms: Atoms) -> tuple[float, np.ndarray, None]:
        mol = self._mole(atoms)
        mf = self._run_scf(mol, atoms)
        grad = mf.nuc_grad_method()
        grad.verbose = 0
        if self.grid_response:
            grad.grid_response = True
        gradient = grad.kernel()  # Hartree/Bohr, (n_atoms, 3)
        energy = float(mf.e_tot) * Hartree
        forces = -np.asarray(gradient, dtype=float) * (Hartree / Bohr)
        if self.reuse_guess and np.isfinite(energy) and np.all(np.isfinite(forces)):
            _GUESS_CACHE[(tuple(int(z) for z in atoms.numbers), self._settings_key())] = (
                atoms.positions.copy(),
                np.asarray(mf.make_rdm1()),
            )
        return energy, forces, None

    def calculator(self) -> PySCFCalculator:
        return PySCFCalculator(labeler=self)


class PySCFCalculator(Calculator):
    """An ASE calculator running a :class:`PySCFLabeler` (energy in eV, forces in eV/Å, molecules only).

    Used to drive MD, relaxations and vibrational analyses with the same settings as the labels.
    """

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "forces"]

    def __init__(self, labeler: PySCFLabeler | None = None, **kwargs):
        super().__init__()
        self.labeler = labeler if labeler is not None else PySCFLabeler(**kwargs)
        self.parameters.update(self.labeler._spec_kwargs())

    def calculate(self, atoms: Atoms | None = None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        label = self.labeler.label(self.atoms)
        self.results = {"energy": label.energy, "free_energy": label.energy, "forces": label.forces}
