"""The models the MD speed benchmark times, each behind one small interface.

An *engine* is built once per box (what an MD code does once: build the model, convert species) and then
``engine.step(positions)`` does everything one MD step needs: neighbour list (rebuilt, or reused within a
Verlet skin where the code does that in MD), descriptors or messages, energy, forces by autograd, and the
copy back to numpy. The benchmark moves the atoms along thermal velocities before each call, so the skin
logic is exercised at the rate of a real MD run.

Engines (``ENGINES``), chosen to be comparable in what they compute:

``mlpkit-bpnn``  mlpkit's Behler-Parrinello potential, default descriptor (6 Å cutoff) and network, through
                 :meth:`Potential.predict` (the path :class:`mlpkit.potentials.calculator.MLPCalculator` takes), vesin
                 neighbour list kept with a 0.5 Å Verlet skin (mlpkit's default for MD);
``mlpkit-bpnn-rebuild``  the same with the neighbour list rebuilt every step (skin 0).
``mlpkit-bpnn-torch``  the same without the compiled kernels (torch descriptor; the path before them).
``torchani``     TorchANI 2.9 ANI-2x architecture (its 1008-feature AEV: radial cutoff 5.1 Å, angular 3.5 Å;
                 networks 1008-160-128-96-1 per element), random weights, ONE network (ANI-2x ships an
                 ensemble of 8), TorchANI's own cell-list neighbour code with its Verlet skin (1 Å;
                 ``verlet_cell_list``: candidate pairs kept, distances screened every step). Weights are random because
                 ``torchani.models.ANI2x()`` downloads them at run time, which fails offline.
``mace``         mace-torch 0.3.16 ``MACE``: 32 channels, L=1 (hidden irreps 32x0e+32x1o), r_max 5 Å,
                 2 interactions, correlation 3, max_ell 3 (the ``mace_run_train`` defaults otherwise),
                 random weights; neighbour list by MACE's own ``AtomicData.from_config`` (matscipy), as
                 its ASE calculator does every step. Stress is not computed (no engine computes it).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from ase import Atoms


class Engine(Protocol):
    name: str
    cutoff: float

    def step(self, positions: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy (eV) and forces ((n, 3) eV/Å) at ``positions`` ((n, 3) Å), including the neighbour list."""


def _dtype(precision: str):
    import torch

    return {"float32": torch.float32, "float64": torch.float64}[precision]


# -- mlpkit --------------------------------------------------------------------------------------------


class MlpkitBPNN:
    """mlpkit's BPNN as ``create_potential("bpnn", [box])`` makes it: default descriptor (6 Å cutoff for
    periodic data) and networks, random weights and unit normalisation (the values do not change the cost),
    through :meth:`Potential.predict` (the path :class:`mlpkit.potentials.calculator.MLPCalculator` takes). For one
    structure of ≥ 200 atoms mlpkit keeps a Verlet neighbour list with a 0.5 Å skin; ``skin=0`` rebuilds
    it every step."""

    def __init__(self, atoms: Atoms, precision: str = "float64", skin: float | None = None):
        from mlpkit.potentials.registry import create_potential

        extra = {} if skin is None else {"verlet_skin": skin}
        self.potential = create_potential("bpnn", [atoms], dtype=precision, **extra)
        self.cutoff = self.potential.cutoff
        self.name = f"mlpkit-bpnn {precision}" + ("" if skin is None else f" skin={skin:g}")
        self.atoms = atoms.copy()
        self.atoms.calc = None

    def step(self, positions):
        self.atoms.positions = positions
        pred = self.potential.predict([self.atoms])
        return float(pred.energy[0]), np.asarray(pred.forces[0])

    def neighbor_builds(self) -> int | None:
        graph = getattr(self.potential, "md_graph", None)  # the MD path's Verlet list (None before the first step)
        return None if graph is None else graph.n_builds


class MlpkitBPNNRebuild(MlpkitBPNN):
    """mlpkit's BPNN with the neighbour list rebuilt every step (Verlet skin 0)."""

    def __init__(self, atoms: Atoms, precision: str = "float64"):
        super().__init__(atoms, precision, skin=0.0)


class MlpkitBPNNTorch(MlpkitBPNN):
    """mlpkit's BPNN without the compiled kernels (``potential.compiled = False``): the torch descriptor with
    its hand-derived backward, i.e. mlpkit's MD path before the kernels, and its path on GPUs."""

    def __init__(self, atoms: Atoms, precision: str = "float64"):
        super().__init__(atoms, precision)
        self.potential.compiled = False
        self.name = f"mlpkit-bpnn-torch {precision}"


# -- TorchANI ------------------------------------------------------------------------------------------


class TorchANI:
    """ANI-2x architecture with random weights (seeded), one network, TorchANI's cell list."""

    def __init__(self, atoms: Atoms, precision: str = "float32", seed: int = 0):
        import torch
        from torchani.arch import Assembler
        from torchani.models import SYMBOLS_2X

        torch.manual_seed(seed)
        asm = Assembler(periodic_table_index=True)
        asm.set_symbols(SYMBOLS_2X)
        asm.set_global_cutoff_fn("cosine")
        asm.set_aev_computer(radial="ani2x", angular="ani2x", strategy="pyaev")
        asm.set_atomic_networks(ctor="ani2x")
        asm.set_neighborlist("verlet_cell_list")
        asm.set_gsaes_as_self_energies("wb97x-631gd")
        self.dtype = _dtype(precision)
        self.model = asm.assemble(1).to(self.dtype)
        self.model.requires_grad_(False)
        self.name = f"torchani-2x {precision}"
        self.cutoff = float(self.model.cutoff)
        self.species = torch.as_tensor(atoms.numbers, dtype=torch.long)[None]
        self.cell = torch.as_tensor(np.asarray(atoms.cell), dtype=self.dtype)
        self.pbc = torch.as_tensor(atoms.pbc, dtype=torch.bool)
        self.hartree = 27.211386245988  # TorchANI works in Hartree

    def step(self, positions):
        import torch

        coords = torch.as_tensor(positions, dtype=self.dtype)[None].requires_grad_(True)
        energy = self.model((self.species, coords), cell=self.cell, pbc=self.pbc).energies.sum()
        (grad,) = torch.autograd.grad(energy, coords)
        return float(energy.detach()) * self.hartree, -grad[0].double().numpy() * self.hartree


# -- MACE ----------------------------------------------------------------------------------------------


def build_mace(precision: str = "float64", seed: int = 0, r_max: float = 5.0, channels: int = 32, max_L: int = 1):
    """A ``mace.modules.MACE`` for H and O with random (seeded) weights, as ``mace_run_train`` would build it
    with ``--num_channels=32 --max_L=1 --r_max=5.0`` and its other defaults."""
    import torch
    from e3nn import o3
    from mace import modules

    torch.manual_seed(seed)
    hidden = o3.Irreps(" + ".join(f"{channels}x{ell}{'e' if ell % 2 == 0 else 'o'}" for ell in range(max_L + 1)))
    model = modules.MACE(
        r_max=r_max,
        num_bessel=8,
        num_polynomial_cutoff=5,
        max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=2,
        num_elements=2,
        hidden_irreps=hidden,
        MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.array([-13.6, -2040.0]),
        avg_num_neighbors=45.0,  # water at 1 g/cm³ within 5 Å
        atomic_numbers=[1, 8],
        correlation=3,
        gate=torch.nn.functional.silu,
        radial_MLP=[64, 64, 64],
        radial_type="bessel",
    )
    return model.to(_dtype(precision))


class MACE:
    """Small MACE (see :func:`build_mace`), neighbour list rebuilt every step by MACE's own data code."""

    def __init__(self, atoms: Atoms, precision: str = "float64", seed: int = 0):
        import torch
        from mace import data as mace_data
        from mace.tools import torch_geometric, utils

        self.dtype = _dtype(precision)
        self.model = build_mace(precision, seed)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.name = f"mace-L1-32ch {precision}"
        self.cutoff = 5.0
        self.atoms = atoms.copy()
        self.atoms.calc = None
        self._mace_data = mace_data
        self._collate = torch_geometric.batch.Batch.from_data_list
        self.z_table = utils.AtomicNumberTable([1, 8])
        self._torch = torch

    def step(self, positions):
        torch = self._torch
        self.atoms.positions = positions
        previous = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)
        try:
            config = self._mace_data.config_from_atoms(self.atoms)
            graph = self._mace_data.AtomicData.from_config(config, z_table=self.z_table, cutoff=self.cutoff)
        finally:
            torch.set_default_dtype(previous)
        batch = self._collate([graph]).to_dict()
        out = self.model(batch, compute_force=True, compute_stress=False, training=False)
        return float(out["energy"][0]), out["forces"].detach().double().numpy()


#: engine name -> (factory(atoms, precision), precisions it is timed in)
ENGINES = {
    "mlpkit-bpnn": (MlpkitBPNN, ("float64", "float32")),
    "mlpkit-bpnn-rebuild": (MlpkitBPNNRebuild, ("float64",)),
    "mlpkit-bpnn-torch": (MlpkitBPNNTorch, ("float64",)),
    "torchani": (TorchANI, ("float32",)),
    "mace": (MACE, ("float64", "float32")),
}


def make_engine(key: str, atoms: Atoms, precision: str) -> Engine:
    factory, _ = ENGINES[key]
    return factory(atoms, precision=precision)
