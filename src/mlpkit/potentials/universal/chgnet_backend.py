"""CHGNet itself, offline: its weights from the chgnet wheel (read as tensors only), graphs from ASE Atoms, and one
batched pass that gives total energies (eV), forces (eV/Å) and stress (eV/Å³, ASE sign).

Kept apart from the potential class so the pieces that touch CHGNet's internals (``BatchedGraph``, ``_compute``)
sit in one place.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from mlpkit.errors import InputError

#: CHGNet's stress comes in GPa: 1 eV/Å³ = 160.21766208 GPa
EV_PER_A3_IN_GPA = 160.21766208
#: elements CHGNet embeds (H ... Pu)
MAX_Z = 94

#: pretrained models inside the chgnet 0.4.2 wheel (chgnet/pretrained/NAME/FILE); CHGNet.load's own table
SHIPPED = {
    "0.3.0": "0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar",
    "0.2.0": "0.2.0/chgnet_0.2.0_e30f77s348m32.pth.tar",
    "r2scan": "r2scan/chgnet_r2scan_transfer_learning_e15f36s161m23.pth.tar",
}
DEFAULT_MODEL = "0.3.0"
RELEASES = "https://github.com/CederGroupHub/chgnet/tree/v0.4.2/chgnet/pretrained"


def pretrained_dir() -> Path:
    import chgnet

    return Path(chgnet.__file__).parent / "pretrained"


def checkpoint_file(model: str) -> Path:
    """The checkpoint of a named CHGNet model (or ``model`` itself if it is a file); never downloads.

    Raises InputError naming the file to place and where, for a shipped name whose file is missing, and listing
    the offline names for an unknown one.
    """
    if model in SHIPPED:
        file = pretrained_dir() / SHIPPED[model]
        if not file.is_file():
            raise InputError(
                f"CHGNet model {model!r} needs the weights file {file.name}, which this chgnet installation lacks: "
                f"place it at {file} (it ships in the chgnet 0.4.2 wheel; also at {RELEASES}/{SHIPPED[model]}), "
                "or give the file's path as the model: mlpkit.load('chgnet:/path/to/file.pth.tar')"
            )
        return file
    path = Path(os.path.expanduser(model))
    if path.is_file():
        return path
    raise InputError(
        f"unknown CHGNet model {model!r}: the offline models are {', '.join(SHIPPED)} (shipped in the chgnet wheel); "
        "nothing is downloaded at run time, so for any other CHGNet checkpoint place its .pth.tar file on this "
        "machine and give its path, e.g. mlpkit.load('chgnet:/path/to/chgnet_model.pth.tar')"
    )


def read_checkpoint(model: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(model_args, state_dict) of a CHGNet checkpoint, read with ``torch.load(weights_only=True)``.

    CHGNet's own ``CHGNet.from_file`` unpickles (``weights_only=False``); its checkpoints hold only dicts, numbers,
    strings and tensors, so the safe loader reads them.
    """
    file = checkpoint_file(model)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a checkpoint, or one holding arbitrary objects
        raise InputError(f"{file} is not a CHGNet checkpoint readable as plain tensors: {exc}") from exc
    state = state.get("model", state)
    if "model_args" not in state or "state_dict" not in state:
        raise InputError(f"{file} is not a CHGNet checkpoint (no model_args/state_dict)")
    return dict(state["model_args"]), dict(state["state_dict"])


def build_chgnet(model_args: dict[str, Any], state_dict: dict[str, torch.Tensor] | None, dtype: torch.dtype):
    """A CHGNet module from its constructor arguments (+ weights), in ``dtype``, every parameter frozen.

    ``mlp_out_bias`` is True only for 0.2.0, as in ``CHGNet.load`` (the bias gives unphysical jumps otherwise).
    """
    from chgnet.model.model import CHGNet

    args = dict(model_args)
    args.setdefault("mlp_out_bias", args.get("version") == "0.2.0")
    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its parameter count
        module = CHGNet(**args)
    # cast first: loading float64 fine-tuned weights into float32 parameters would round them
    module = module.to(dtype)
    if state_dict is not None:
        module.load_state_dict(state_dict)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def pretrained_module(model: str, dtype: torch.dtype):
    """(module, model_args) of a named or file CHGNet model."""
    args, state = read_checkpoint(model)
    if model in SHIPPED:
        args["version"] = model
    return build_chgnet(args, state, dtype), args


class GraphMaker:
    """ASE Atoms → CHGNet ``CrystalGraph`` in the model's float type.

    Isolated molecules (``pbc`` all False) are placed in a box whose periodic images stay beyond the cutoff (so
    the energy is that of the molecule alone); fully periodic cells are used as they are; mixed ``pbc`` is refused
    (CHGNet sees every cell as periodic in three directions).
    """

    def __init__(self, atom_cutoff: float, bond_cutoff: float, dtype: torch.dtype, device: torch.device):
        from chgnet.graph import CrystalGraphConverter

        with contextlib.redirect_stdout(io.StringIO()):
            self.converter = CrystalGraphConverter(
                atom_graph_cutoff=atom_cutoff,
                bond_graph_cutoff=bond_cutoff,
                algorithm="fast",
                # a lone atom (no neighbour within the cutoff) contributes its embedding's energy: physical here
                on_isolated_atoms="ignore",
            )
        self.cutoff = float(atom_cutoff)
        self.bond_cutoff = float(bond_cutoff)
        self.dtype = dtype
        self.device = device

    def __call__(self, atoms: Atoms):
        from pymatgen.core import Lattice, Structure

        if atoms.pbc.all():
            cell = np.asarray(atoms.cell[:], dtype=float)
            if abs(np.linalg.det(cell)) < 1e-9:
                raise InputError("a periodic configuration needs a cell of non-zero volume")
            positions = atoms.positions
        elif not atoms.pbc.any():
            positions = atoms.positions - atoms.positions.min(axis=0) + 0.5
            cell = np.diag(positions.max(axis=0) + 0.5 + self.cutoff + 1.0)
        else:
            raise InputError(
                f"CHGNet needs fully periodic cells or isolated structures, got pbc={atoms.pbc.tolist()}: "
                "set pbc=True with enough vacuum along the open directions"
            )
        lattice = Lattice(cell)
        structure = Structure(lattice, atoms.numbers, positions, coords_are_cartesian=True, to_unit_cell=False)
        graph = self.converter(structure)
        # the converter stores coordinates in float32: take them again from float64 so derivatives are exact
        frac = np.linalg.solve(cell.T, positions.T).T
        graph.atom_frac_coord = torch.tensor(frac, dtype=self.dtype, requires_grad=True)
        graph.lattice = torch.tensor(cell, dtype=self.dtype, requires_grad=True)
        graph.neighbor_image = graph.neighbor_image.to(self.dtype)
        return graph.to(str(self.device)) if self.device.type != "cpu" else graph


@dataclass
class Output:
    """Network part of the energy (eV, without composition model and offsets), forces, stress of a batch."""

    energy: torch.Tensor  # (n,)
    forces: list[torch.Tensor]  # (n_i, 3) each
    stress: list[torch.Tensor] | None  # (3, 3) eV/Å³ each, ASE sign


def run_chgnet(module, graphs: Sequence[Any], *, forces: bool, stress: bool, create_graph: bool) -> Output:
    """One batched CHGNet pass over ``graphs``; ``create_graph`` keeps the graph for a force loss.

    CHGNet's ``_compute`` returns the sum of site energies divided by the atom count (it is trained intensive) and
    forces = -∂(Σ site energies)/∂r; its stress = (1/V) ∂E/∂ε in GPa, the ASE sign (checked by finite strain).
    """
    from chgnet.model.model import BatchedGraph

    with torch.enable_grad(), warnings.catch_warnings():
        # BatchedGraph builds its volume tensor from 0-d tensors that need grad (harmless; stress is scaled by it)
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
        batch = BatchedGraph.from_graphs(
            list(graphs),
            bond_basis_expansion=module.bond_basis_expansion,
            angle_basis_expansion=module.angle_basis_expansion,
            compute_stress=stress,
        )
        out = module._compute(batch, compute_force=forces, compute_stress=stress)
    n_atoms = out["atoms_per_graph"].to(out["e"].dtype)
    energy = out["e"] * n_atoms
    if not create_graph:
        energy = energy.detach()
    f = list(out["f"]) if forces else []
    s = None
    if stress:
        # CHGNet scales ∂E/∂ε by 160.2/V with V in float32; undo its exact factor and divide by the float64 volume
        scale = 1 / batch.volumes * EV_PER_A3_IN_GPA
        s = []
        for k, (x, g) in enumerate(zip(out["s"], graphs, strict=True)):
            lat = g.lattice.detach()
            volume = torch.dot(lat[0], torch.linalg.cross(lat[1], lat[2]))
            s.append(x / scale[k].to(x.dtype) / volume)
    if not create_graph:
        f = [x.detach() for x in f]
        s = [x.detach() for x in s] if s is not None else None
    return Output(energy, f, s)


def composition_counts(images: Sequence[Atoms]) -> np.ndarray:
    """(n, 94) number of atoms of each element (column Z-1) in each configuration."""
    return np.stack([np.bincount(a.numbers - 1, minlength=MAX_Z)[:MAX_Z] for a in images]).astype(float)


def batches(images: Sequence[Atoms], batch_atoms: int) -> list[list[int]]:
    """Indices of ``images`` in consecutive batches of at most ``batch_atoms`` atoms (and 16 configurations)."""
    out, cur, n = [], [], 0
    for i, atoms in enumerate(images):
        if cur and (n + len(atoms) > batch_atoms or len(cur) >= 16):
            out.append(cur)
            cur, n = [], 0
        cur.append(i)
        n += len(atoms)
    if cur:
        out.append(cur)
    return out
