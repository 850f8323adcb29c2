"""The frames an MD run records: a bare copy of the configuration with the step's predictions in ``info``, the
uncertainty score read from a calculator's results, and the trajectory file the frames are appended to.

Frames carry no calculator (so predicted numbers are never mistaken for reference labels): their ``info``
holds ``mlp_energy`` (eV) and, for uncertainty-aware potentials, ``energy_std`` (eV) and ``max_force_std`` (eV/Å,
raw) and ``uncertainty`` (calibrated = scale·raw score); :func:`mlpkit.md.dynamics.run_md` adds ``step``,
``time_fs``, ``temperature`` (K) and the thermostat's settings.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError


def raw_uncertainty(results: dict) -> float | None:
    """The per-configuration uncertainty score in a calculator's results: ``uncertainty`` (mlpkit's calculator, any
    kind), else ``max_force_std`` (eV/Å; calculators that report only a force spread); None if neither."""
    value = results.get("uncertainty", results.get("max_force_std"))
    return None if value is None else float(value)


def step_frame(atoms: Atoms, results: dict, scale: float = 1.0) -> Atoms:
    """A bare copy of ``atoms`` (positions, momenta, cell) with the step's predictions in ``info``."""
    frame = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    frame.set_momenta(atoms.get_momenta())
    frame.info.update(
        {k: v for k, v in atoms.info.items() if isinstance(v, (int, float, str, np.integer, np.floating))}
    )
    if "energy" in results:
        frame.info["mlp_energy"] = float(results["energy"])
    if "energy_std" in results:
        frame.info["energy_std"] = float(results["energy_std"])
    if "max_force_std" in results:
        frame.info["max_force_std"] = float(results["max_force_std"])
    raw = raw_uncertainty(results)
    if raw is not None:
        frame.info["uncertainty"] = float(scale * raw)
    return frame


class TrajectoryWriter:
    """Append frames to an extxyz file (flushed each frame) or an ASE .traj file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = self.path.suffix.lower()
        if suffix == ".traj":
            from ase.io.trajectory import Trajectory

            self._traj = Trajectory(str(self.path), "w")
            self._fh = None
        elif suffix in (".extxyz", ".xyz"):
            self._traj = None
            self._fh = open(self.path, "w")
        else:
            raise InputError(f"trajectory {self.path} must end in .extxyz, .xyz or .traj")

    def write(self, frame: Atoms) -> None:
        if self._traj is not None:
            self._traj.write(frame)
        else:
            from ase.io import write

            write(self._fh, frame, format="extxyz")
            self._fh.flush()

    def close(self) -> None:
        if self._traj is not None:
            self._traj.close()
        if self._fh is not None:
            self._fh.close()
