"""Content hashes of configurations, so the same geometry is never stored or labelled twice."""

from __future__ import annotations

import hashlib

import numpy as np
from ase import Atoms

#: Positions and cell are rounded to this many decimals (Å) before hashing, so a configuration that went
#: through a text file (extxyz keeps 8 decimals) hashes like the original.
HASH_DECIMALS = 6


def configuration_hash(atoms: Atoms) -> str:
    """SHA-256 (hex, 32 chars kept) of atomic numbers, positions, cell and periodicity."""
    h = hashlib.sha256()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    # +0.0 turns -0.0 into 0.0 so both hash alike.
    h.update((np.round(np.asarray(atoms.positions, dtype=np.float64), HASH_DECIMALS) + 0.0).tobytes())
    h.update((np.round(np.asarray(atoms.cell[:], dtype=np.float64), HASH_DECIMALS) + 0.0).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=np.int8).tobytes())
    return h.hexdigest()[:32]
