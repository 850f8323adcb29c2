"""Relaxation of one candidate with a potential: positions, and the cell too for periodic structures."""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from mlpkit.potentials import Potential


def relax(atoms: Atoms, pot: Potential, fmax: float, steps: int, optimizer: str) -> tuple[Atoms, float, Any, int]:
    """Relax a copy of ``atoms`` with the potential (positions; and the cell, for periodic structures)."""
    from ase.optimize import BFGS, FIRE

    a = atoms.copy()
    a.calc = pot.calculator()
    target = a
    if a.pbc.all():
        from ase.filters import FrechetCellFilter

        target = FrechetCellFilter(a)
    opt = {"BFGS": BFGS, "FIRE": FIRE}[optimizer](target, logfile=None)
    opt.run(fmax=fmax, steps=steps)
    return a, float(a.get_potential_energy()), np.asarray(a.get_forces()), int(opt.nsteps)
