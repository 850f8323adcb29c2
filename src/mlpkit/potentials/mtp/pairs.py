"""Several configurations as one set of directed pairs: what the moment-tensor basis is computed on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from mlpkit.descriptors.graph import species_index
from mlpkit.descriptors.neighbors import neighbor_list


class Pairs:
    """Several configurations as one set of directed pairs (full neighbour lists, both directions).

    species (N,), image (N,) configuration of each atom, centers/neighbors (P,), vectors (P, 3) Å (neighbour
    image minus centre), n_atoms (n_images,), volume (n_images,) Å³ (0 unless periodic in 3 directions).
    """

    def __init__(self, images: Sequence[Atoms], species: Sequence[str], cutoff: float):
        spec, cen, nei, vec, n_atoms, volume = [], [], [], [], [], []
        offset = 0
        for atoms in images:
            nl = neighbor_list(atoms, cutoff, full=True)
            pos = np.asarray(atoms.positions, dtype=np.float64)
            spec.append(species_index(atoms, species))
            cen.append(nl.i + offset)
            nei.append(nl.j + offset)
            vec.append(pos[nl.j] - pos[nl.i] + nl.shifts @ np.asarray(atoms.cell[:]))
            n_atoms.append(len(atoms))
            volume.append(float(abs(atoms.cell.volume)) if atoms.pbc.all() else 0.0)
            offset += len(atoms)
        self.n_atoms = np.array(n_atoms, dtype=np.int64)
        self.species = np.concatenate(spec) if spec else np.zeros(0, dtype=np.int64)
        self.image = np.repeat(np.arange(len(n_atoms)), self.n_atoms)
        self.centers = np.concatenate(cen) if cen else np.zeros(0, dtype=np.int64)
        self.neighbors = np.concatenate(nei) if nei else np.zeros(0, dtype=np.int64)
        self.vectors = np.concatenate(vec).reshape(-1, 3) if vec else np.zeros((0, 3))
        self.volume = np.array(volume)

    def tensors(self):
        return (
            torch.as_tensor(self.vectors, dtype=torch.float64),
            torch.as_tensor(self.centers),
            torch.as_tensor(self.species[self.neighbors]),
        )
