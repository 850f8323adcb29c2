"""GPAW plane-wave DFT (PAW), the method of the source material: ``gpaw:PBE/PW300``.

GPAW is optional and heavy to build; it is imported only when a calculation is asked for, and a missing
install gives :class:`MissingDependencyError` with the recipe (docs/reference-methods.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError, MissingDependencyError, UnsupportedSpeciesError
from mlpkit.labelers.base import CalculatorLabeler

INSTALL_HINT = (
    "GPAW is not installed. It needs libxc and a BLAS, and a plain `pip install gpaw` fails on MPI headers; "
    "on Debian/Ubuntu: `apt-get install -y libxc-dev libopenblas-dev`, write a siteconfig.py with "
    "`mpi = False`, `compiler = 'g++'`, `libraries = ['xc', 'openblas']`, then "
    "`GPAW_CONFIG=$PWD/siteconfig.py pip install gpaw gpaw-data` (see docs/reference-methods.md)"
)


def _import_gpaw():
    try:
        import gpaw
    except ImportError as exc:
        raise MissingDependencyError(INSTALL_HINT) from exc
    return gpaw


class GPAWLabeler(CalculatorLabeler):
    """GPAW in plane-wave mode: energies (eV), forces (eV/Å) and, for fully periodic cells, stress (eV/Å³).

    Parameters
    ----------
    xc:
        Functional (``PBE``, ``LDA``, ``RPBE``...).
    ecut:
        Plane-wave cut-off in eV (300 in the source material's water example).
    kpts:
        Monkhorst-Pack grid, e.g. ``(2, 2, 2)``; ``(1, 1, 1)`` (the Γ point) for molecules in a box.
    occupations_width:
        Fermi-Dirac smearing width (eV) for periodic systems; ``None`` keeps GPAW's default.
    charge, spin:
        Total charge, and 2S for a spin-polarised calculation (``spin > 0`` sets initial magnetic moments).
    txt:
        GPAW's log file; ``None`` keeps it quiet.
    """

    name = "gpaw"

    def __init__(
        self,
        xc: str = "PBE",
        ecut: float = 300.0,
        kpts: Sequence[int] | int = (1, 1, 1),
        occupations_width: float | None = None,
        charge: int = 0,
        spin: int = 0,
        txt: str | None = None,
    ):
        _import_gpaw()
        if float(ecut) <= 0:
            raise InputError(f"ecut must be a positive energy in eV, got {ecut}")
        if isinstance(kpts, int):
            kpts = (kpts, kpts, kpts)
        kpts = tuple(int(k) for k in kpts)
        if len(kpts) != 3 or min(kpts) < 1:
            raise InputError(f"kpts must be three positive integers, got {kpts}")
        self.xc = str(xc)
        self.ecut = float(ecut)
        self.kpts = kpts
        self.occupations_width = None if occupations_width is None else float(occupations_width)
        self.charge = int(charge)
        self.spin = int(spin)
        self.txt = txt

    @property
    def method(self) -> str:
        """``gpaw:PBE/PW300``, with ``/k2x2x2`` for a k-point grid and ``[charge=..,spin=..]`` when set."""
        s = f"gpaw:{self.xc}/PW{self.ecut:g}"
        if self.kpts != (1, 1, 1):
            s += "/k" + "x".join(str(k) for k in self.kpts)
        extras = [f"charge={self.charge}"] * bool(self.charge) + [f"spin={self.spin}"] * bool(self.spin)
        return s + (f"[{','.join(extras)}]" if extras else "")

    def _spec_kwargs(self) -> dict:
        return {
            "xc": self.xc,
            "ecut": self.ecut,
            "kpts": list(self.kpts),
            "occupations_width": self.occupations_width,
            "charge": self.charge,
            "spin": self.spin,
            "txt": self.txt,
        }

    def check(self, atoms: Atoms) -> None:
        """Plane waves need a cell; every element needs a PAW setup for this functional."""
        super().check(atoms)
        if atoms.cell.rank < 3 or abs(atoms.cell.volume) < 1e-6:
            raise InputError("GPAW plane waves need a 3D cell; put molecules in a box (e.g. atoms.center(vacuum=5))")
        if atoms.pbc.any() and not atoms.pbc.all():
            raise InputError("GPAW plane-wave mode needs pbc all True or all False (a molecule in a box)")
        from ase.data import chemical_symbols

        missing = [chemical_symbols[z] for z in sorted(set(int(z) for z in atoms.numbers)) if not self._has_setup(z)]
        if missing:
            raise UnsupportedSpeciesError(f"GPAW has no {self.xc} PAW setup for {', '.join(missing)}")

    def _has_setup(self, z: int) -> bool:
        cache = self.__dict__.setdefault("_setups", {})
        if z not in cache:
            from ase.data import chemical_symbols
            from gpaw.setup_data import SetupData
            from gpaw.xc import XC

            try:
                SetupData(chemical_symbols[z], XC(self.xc).get_setup_name())  # reads the PAW file
                cache[z] = True
            except Exception:  # FileNotFoundError (no dataset), or a functional without setups
                cache[z] = False
        return cache[z]

    def calculator(self):
        gpaw = _import_gpaw()
        kwargs: dict = {
            "mode": gpaw.PW(self.ecut),
            "xc": self.xc,
            "kpts": self.kpts,
            "txt": self.txt,
            "charge": self.charge,
        }
        if self.occupations_width is not None:
            kwargs["occupations"] = {"name": "fermi-dirac", "width": self.occupations_width}
        if self.spin:
            kwargs["spinpol"] = True
        return gpaw.GPAW(**kwargs)

    def _compute(self, atoms: Atoms):
        if self.spin and not np.any(atoms.get_initial_magnetic_moments()):
            moments = np.zeros(len(atoms))
            moments[0] = self.spin  # GPAW keeps the total moment free; this only breaks the spin symmetry
            atoms.set_initial_magnetic_moments(moments)
        # A molecule in a box: GPAW's PW mode treats the box as periodic; pbc=False only stops it asking for
        # k-points, so energies and forces are those of the (large) box.
        return super()._compute(atoms)
