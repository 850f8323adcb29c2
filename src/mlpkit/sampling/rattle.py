"""Random rattling: Gaussian displacements of every atom around a structure."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from mlpkit.data.structures import MIN_INTERATOMIC_DISTANCE, check_structure
from mlpkit.errors import InputError


def rattle(atoms: Atoms, n: int, stdev: float = 0.05, seed: int = 0) -> list[Atoms]:
    """``n`` copies of ``atoms`` with independent Gaussian displacements (``stdev`` Å per Cartesian component).

    Seeded (``numpy.random.default_rng(seed)``). A draw that puts two atoms closer than
    ``MIN_INTERATOMIC_DISTANCE`` is redrawn. Each copy has ``info`` ``source="rattle"``, ``rattle_stdev``
    and ``rattle_index``.
    """
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    if not stdev > 0:
        raise InputError(f"stdev must be a positive length in Å, got {stdev}")
    check_structure(atoms)
    rng = np.random.default_rng(seed)
    out: list[Atoms] = []
    redraws = 0
    while len(out) < n:
        new = Atoms(
            numbers=atoms.numbers,
            positions=atoms.positions + rng.normal(0.0, stdev, size=(len(atoms), 3)),
            cell=atoms.cell,
            pbc=atoms.pbc,
        )
        try:
            check_structure(new)
        except InputError:
            redraws += 1
            if redraws > 10 * n + 100:
                raise InputError(
                    f"rattling with stdev {stdev} Å keeps putting atoms closer than "
                    f"{MIN_INTERATOMIC_DISTANCE} Å; use a smaller stdev"
                ) from None
            continue
        new.info.update(source="rattle", rattle_stdev=float(stdev), rattle_index=len(out), seed=int(seed))
        out.append(new)
    return out
