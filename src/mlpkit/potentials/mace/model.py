"""Building a ``ScaleShiftMACE`` from typed hyperparameters, and the graphs it reads, without MACE's data pipeline.

mace-torch is used as a library: its modules compute the energy; mlpkit builds the neighbour graphs (vesin, one
call per configuration, no Python loop over atoms or pairs), batches them by concatenation and takes forces and
stress by autograd.

Import order matters (../shared/environment.md): ``import mace`` must come before ``from e3nn import o3`` (e3nn
0.4.4 needs ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` under torch >= 2.6, which importing mace sets for the whole
process). After that every ``torch.load`` in mlpkit passes ``weights_only=True`` explicitly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mace  # noqa: F401  (first: sets up e3nn's import under torch >= 2.6; see module docstring)
import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers
from e3nn import o3
from mace import modules

from mlpkit.descriptors.neighbors import neighbor_list
from mlpkit.errors import UnsupportedSpeciesError


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def torch_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64}[name]


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    # e3nn creates some constants in the default dtype at construction: build in the model's dtype, then restore
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def build_model(species: Sequence[str], hp: dict[str, Any], avg_num_neighbors: float) -> torch.nn.Module:
    """A ``ScaleShiftMACE`` for ``species`` (sorted by Z) from validated hyperparameters, on CPU in ``hp['dtype']``.

    Its per-element ``atomic_energies`` are zero (mlpkit adds its own float64 reference energies outside the network,
    so float32 models keep the total energy's precision), scale 1 and shift 0 (set from data by the fit).
    """
    dtype = torch_dtype(hp["dtype"])
    channels, max_L = int(hp["channels"]), int(hp["max_L"])
    hidden = o3.Irreps(" + ".join(f"{channels}x{ell}{'e' if ell % 2 == 0 else 'o'}" for ell in range(max_L + 1)))
    with _default_dtype(torch.float64), torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(hp["init_seed"]))
        model = modules.ScaleShiftMACE(
            r_max=float(hp["r_max"]),
            num_bessel=int(hp["num_bessel"]),
            num_polynomial_cutoff=int(hp["num_polynomial_cutoff"]),
            max_ell=int(hp["max_ell"]),
            interaction_cls=modules.interaction_classes[hp["interaction"]],
            interaction_cls_first=modules.interaction_classes[hp["interaction_first"]],
            num_interactions=int(hp["num_interactions"]),
            num_elements=len(species),
            hidden_irreps=hidden,
            MLP_irreps=o3.Irreps(f"{int(hp['readout_hidden'])}x0e"),
            atomic_energies=np.zeros(len(species)),
            avg_num_neighbors=float(avg_num_neighbors),
            atomic_numbers=[atomic_numbers[s] for s in species],
            correlation=int(hp["correlation"]),
            gate=torch.nn.functional.silu,
            radial_MLP=[int(h) for h in hp["radial_mlp"]],
            use_reduced_cg=bool(hp["use_reduced_cg"]),
            atomic_inter_scale=1.0,
            atomic_inter_shift=0.0,
        )
    return model.to(dtype=dtype)


def set_avg_num_neighbors(model: torch.nn.Module, value: float) -> None:
    """The message normalisation is a plain attribute of each interaction block (not in the state_dict)."""
    for block in model.interactions:
        block.avg_num_neighbors = float(value)


@dataclass
class Graph:
    """One configuration as MACE reads it: element index (n,), positions (n, 3) Å, cell (3, 3) Å (zeros when not
    periodic), directed edges ``sender → receiver`` (2, P) with integer cell shifts (P, 3), and ``periodic``
    (all three directions)."""

    species: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    edges: np.ndarray
    unit_shifts: np.ndarray
    periodic: bool


def make_graph(atoms: Atoms, species: Sequence[str], r_max: float) -> Graph:
    """The graph of ``atoms`` within ``r_max`` (Å); raises UnsupportedSpeciesError for an element not in ``species``."""
    z_to_index = np.full(119, -1, dtype=np.int64)
    z_to_index[[atomic_numbers[s] for s in species]] = np.arange(len(species))
    idx = z_to_index[atoms.numbers]
    if (idx < 0).any():
        extra = sorted(set(np.asarray(atoms.get_chemical_symbols())[idx < 0]))
        raise UnsupportedSpeciesError(f"elements {', '.join(extra)} are not among {', '.join(species)}")
    # vesin's full list: the vector i→j is positions[j] - positions[i] + S·cell, MACE's sender→receiver convention
    nl = neighbor_list(atoms, r_max, full=True)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell[:], dtype=np.float64) if pbc.any() else np.zeros((3, 3))
    return Graph(
        species=idx,
        positions=np.asarray(atoms.positions, dtype=np.float64),
        cell=cell,
        edges=np.stack([nl.i, nl.j]),
        unit_shifts=nl.shifts.astype(np.float64),
        periodic=bool(pbc.all()),
    )


def collate(graphs: Sequence[Graph], n_species: int, dtype: torch.dtype, device: torch.device) -> dict:
    """One batch dictionary in mace-torch's keys (positions, cell, edge_index, shifts, unit_shifts, node_attrs,
    batch, ptr) from ``graphs``, by concatenation."""
    counts = np.array([len(g.species) for g in graphs])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    edge_index = np.concatenate([g.edges + o for g, o in zip(graphs, offsets[:-1], strict=True)], axis=1)
    unit_shifts = np.concatenate([g.unit_shifts for g in graphs])
    cells = np.stack([g.cell for g in graphs])
    sender_graph = np.repeat(np.arange(len(graphs)), [g.edges.shape[1] for g in graphs])
    shifts = np.einsum("pa,pab->pb", unit_shifts, cells[sender_graph])
    species = np.concatenate([g.species for g in graphs])

    def t(x, dt=dtype):
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dt, device=device)

    return {
        "positions": t(np.concatenate([g.positions for g in graphs])),
        "cell": t(cells.reshape(-1, 3)),
        "edge_index": t(edge_index, torch.int64),
        "shifts": t(shifts),
        "unit_shifts": t(unit_shifts),
        "node_attrs": torch.nn.functional.one_hot(t(species, torch.int64), n_species).to(dtype),
        "batch": t(np.repeat(np.arange(len(graphs)), counts), torch.int64),
        "ptr": t(offsets, torch.int64),
    }


def energy_forces(
    model: torch.nn.Module, data: dict, *, training: bool = False, stress: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Interaction energy (n_graphs,) eV, forces (N, 3) eV/Å = -dE/dx (autograd), and with ``stress`` the stress
    (n_graphs, 3, 3) eV/Å³ = (1/V) dE/dε through a symmetric cell strain (mace-torch's displacement; ASE sign).

    ``training=True`` keeps the graph so that a loss on forces can be differentiated again.
    """
    out = model(data, training=training, compute_force=True, compute_stress=stress)
    return out["interaction_energy"], out["forces"], out["stress"] if stress else None
