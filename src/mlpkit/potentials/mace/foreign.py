"""Conversion of a MACE ``.model`` file (a pickled torch module written by mace-torch) to mlpkit's format.

Unpickling runs whatever code the file names, so nothing here reads the file unless the caller passes
``trust_pickle=True``. The converted potential stores hyperparameters + a plain state_dict like any mlpkit MACE
model and is checked to give the same energies as the imported module before it is handed back.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from mlpkit.errors import InputError
from mlpkit.potentials.mace.model import collate, make_graph
from mlpkit.potentials.mace.settings import INTERACTIONS

if TYPE_CHECKING:
    from mlpkit.potentials.mace.potential import MACEPotential

TRUST_MESSAGE = (
    "a MACE .model file is a Python pickle: loading it executes any code the file contains, with your permissions "
    "(it can read, change or delete your files). Only if you made this file yourself or trust its source, pass "
    "trust_pickle=True (MACEPotential.import_foreign(path, trust_pickle=True)); then save the converted model with "
    ".save(dir) and load that from then on: mlpkit's model directories hold plain tensors and are safe to load"
)


def import_mace_model(
    cls: type[MACEPotential], path: str | os.PathLike, *, trust_pickle: bool = False, **options: Any
) -> MACEPotential:
    """See :meth:`MACEPotential.import_foreign`."""
    if trust_pickle is not True:
        raise InputError(f"refusing to load {path}: {TRUST_MESSAGE}")
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such MACE model file")
    import mace  # noqa: F401  (the pickle names mace classes)

    # the one deliberate full unpickling in mlpkit, behind the caller's explicit trust
    foreign = torch.load(path, map_location="cpu", weights_only=False)
    hp, species, refs = _hyperparameters(foreign)
    hp.update(options)
    pot = cls(species, **hp)
    state = {k: v.detach().clone() for k, v in foreign.state_dict().items()}
    own = pot.module.state_dict()
    # the per-element energies live in mlpkit's float64 reference energies; the network's stay zero
    state["atomic_energies_fn.atomic_energies"] = torch.zeros_like(own["atomic_energies_fn.atomic_energies"])
    for key in ("scale_shift.scale", "scale_shift.shift"):  # one head: () or (1,) depending on the writer
        state[key] = state[key].reshape(own[key].shape)
    try:
        pot.module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(f"{path}: this MACE architecture cannot be rebuilt by mlpkit: {exc}") from exc
    pot.reference_energies = refs
    pot.fitted = True
    pot.metadata.update({"imported_from": os.path.abspath(path), "method": "unknown (imported MACE model)"})
    _check_same_energies(foreign, pot)
    return pot


def _hyperparameters(model: torch.nn.Module) -> tuple[dict, list[str], np.ndarray]:
    """mlpkit hyperparameters, species and reference energies (eV) of a ScaleShiftMACE; InputError for anything
    this family does not rebuild (several heads, pair repulsion, other blocks, ...)."""
    from mace.tools.scripts_utils import extract_config_mace_model

    if type(model).__name__ != "ScaleShiftMACE":
        raise InputError(f"only ScaleShiftMACE models can be imported (got {type(model).__name__})")
    cfg = extract_config_mace_model(model)
    problems = []
    if len(cfg["heads"]) != 1:
        problems.append(f"{len(cfg['heads'])} heads")
    for key in (
        "pair_repulsion",
        "use_so3",
        "use_agnostic_product",
        "use_last_readout_only",
        "use_embedding_readout",
        "use_edge_irreps_first",
    ):
        if cfg.get(key):
            problems.append(key)
    if cfg.get("embedding_specs") or cfg.get("edge_irreps") or cfg.get("cueq_config"):
        problems.append("extra embeddings, edge irreps or cuequivariance")
    if cfg["radial_type"] != "bessel" or cfg.get("distance_transform"):
        problems.append(f"radial basis {cfg['radial_type']} / transform {cfg.get('distance_transform')}")
    for key in ("interaction_cls", "interaction_cls_first"):
        if cfg[key].__name__ not in INTERACTIONS:
            problems.append(f"{key} {cfg[key].__name__}")
    if cfg["readout_cls"].__name__ != "NonLinearReadoutBlock":
        problems.append(f"readout {cfg['readout_cls'].__name__}")
    if cfg["gate"] is not torch.nn.functional.silu:
        problems.append(f"gate {cfg['gate']}")
    irreps = cfg["hidden_irreps"]
    channels, max_L = irreps[0].mul, irreps.lmax
    expected = " + ".join(f"{channels}x{ell}{'e' if ell % 2 == 0 else 'o'}" for ell in range(max_L + 1))
    if str(irreps).replace("+", " + ") != expected:
        problems.append(f"hidden irreps {irreps}")
    if problems:
        raise InputError("this MACE model uses features mlpkit's mace family does not rebuild: " + ", ".join(problems))
    numbers = [int(z) for z in cfg["atomic_numbers"]]
    if numbers != sorted(numbers):
        raise InputError("the model's elements are not in order of atomic number")
    dtype = next(model.parameters()).dtype
    hp = {
        "channels": int(channels),
        "max_L": int(max_L),
        "r_max": float(cfg["r_max"]),
        "num_interactions": int(cfg["num_interactions"]),
        "correlation": int(cfg["correlation"]),
        "max_ell": int(cfg["max_ell"]),
        "num_bessel": int(cfg["num_bessel"]),
        "num_polynomial_cutoff": int(cfg["num_polynomial_cutoff"]),
        "radial_mlp": [int(h) for h in cfg["radial_MLP"]],
        "readout_hidden": int(cfg["MLP_irreps"].count((0, 1))),
        "interaction": cfg["interaction_cls"].__name__,
        "interaction_first": cfg["interaction_cls_first"].__name__,
        "use_reduced_cg": bool(cfg["use_reduced_cg"]),
        "avg_num_neighbors": float(cfg["avg_num_neighbors"]),
        "dtype": "float64" if dtype == torch.float64 else "float32",
        "device": "auto",
    }
    refs = np.asarray(cfg["atomic_energies"], dtype=np.float64).reshape(-1)
    return hp, [chemical_symbols[z] for z in numbers], refs


def _check_same_energies(foreign: torch.nn.Module, pot: MACEPotential) -> None:
    """Both modules on one small cluster of every element: total energies and forces must agree."""
    rng = np.random.default_rng(0)
    n = max(4, 2 * len(pot.species))
    symbols = [pot.species[k % len(pot.species)] for k in range(n)]
    atoms = Atoms(symbols, positions=rng.uniform(0, 1.2 * n ** (1 / 3) + 1.0, size=(n, 3)))
    graph = make_graph(atoms, pot.species, pot.cutoff)
    dtype = next(foreign.parameters()).dtype
    out = foreign.to("cpu")(collate([graph], len(pot.species), dtype, torch.device("cpu")), compute_force=True)
    mine = pot.predict([atoms])
    e_ref, f_ref = float(out["energy"].detach().double()[0]), out["forces"].detach().double().numpy()
    tol = 1e-8 if dtype == torch.float64 and pot.dtype == torch.float64 else 1e-3
    if abs(mine.energy[0] - e_ref) > tol * max(1.0, abs(e_ref)) or not np.allclose(mine.forces[0], f_ref, atol=tol):
        raise InputError(
            f"the converted model does not reproduce the imported one (energy {mine.energy[0]} vs {e_ref} eV)"
        )
