"""Hyperparameters and fit settings of the linear moment-tensor family, typed, with measured defaults."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms
from pydantic import Field

from mlpkit.schema import Settings, validate_settings

#: the default level keeps n_elements x n_basis at or below this (a solve of seconds to a minute)
MAX_DEFAULT_COEFFICIENTS = 2000


def default_level(n_species: int, max_rank: int = 4) -> int:
    """The highest even level <= 16 whose basis has at most MAX_DEFAULT_COEFFICIENTS coefficients in all."""
    from mlpkit.potentials.mtp.basis import MomentTensorBasis

    for level in (16, 14, 12, 10, 8):
        if n_species * MomentTensorBasis(n_species, level, max_rank, 1.0, 0.1).n_basis <= MAX_DEFAULT_COEFFICIENTS:
            return level
    return 6


class MTPHyperparameters(Settings):
    """The moment-tensor basis (see :mod:`mlpkit.potentials.mtp.basis`).

    ``cutoff: null`` takes it from the data: 5 Å for periodic cells; for isolated molecules the largest
    interatomic distance in the data + 0.5 Å (between 2 and 5 Å). ``r_min: null``: 0.8 x the shortest training
    distance (Chebyshev polynomials resolve best inside [r_min, cutoff]).
    """

    level: int | None = Field(
        None,
        ge=2,
        le=24,
        description="MTP level: the largest Σ(2 + 4k + ν) over the moments of a basis function (dimensionless; "
        "basis size grows fast: 868 functions per element at 16 with two elements, 174 at 12); null: the highest "
        f"even level <= 16 with at most {MAX_DEFAULT_COEFFICIENTS} coefficients in all (16 for one or two "
        "elements, 12 for three)",
    )
    max_rank: int = Field(4, ge=0, le=6, description="highest tensor rank ν of a moment (cost grows as 3^ν)")
    cutoff: float | None = Field(None, gt=0, description="radial cutoff r_c (Å); null: from the data")
    r_min: float | None = Field(None, gt=0, description="lower end of the Chebyshev interval (Å); null: from data")


class LinearFitSettings(Settings):
    """Weighted ridge least squares on energies, forces and stress (one linear solve).

    Each configuration's rows are also multiplied by ``atoms.info[weight_key]`` when present (a per-configuration
    weight, e.g. to down-weight high-energy frames).
    """

    energy_weight: float = Field(
        1.0, ge=0, description="weight of an energy residual per atom (1/(eV/atom)); squared in the loss"
    )
    force_weight: float = Field(
        0.1, ge=0, description="weight of a force-component residual (1/(eV/Å)); squared in the loss"
    )
    stress_weight: float = Field(
        10.0, ge=0, description="weight of a stress-component residual (1/(eV/Å³)), periodic data with stress only"
    )
    ridge: float = Field(
        1e-10,
        ge=0,
        description="ridge penalty on the coefficients of the standardised basis, relative to the diagonal of the "
        "normal matrix (dimensionless)",
    )
    weight_key: str = Field("weight", description="atoms.info key of an optional per-configuration weight")
    active_set: bool = Field(
        True, description="select the MaxVol active set after the fit (needed for the extrapolation grade)"
    )
    valid_fraction: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="fraction of the configurations held out (seeded split) only to report validation errors; a "
        "closed-form fit has no early stopping, so 0 (the default) fits on everything",
    )


class MTPFitSettings(LinearFitSettings):
    """:class:`LinearFitSettings` plus the block size of the moment-tensor design matrix."""

    chunk_pairs: int = Field(4000, ge=100, description="pairs per block of the design matrix (memory, not results)")


def cutoff_from_data(train: Sequence[Atoms]) -> float:
    """Data-derived cutoff (Å): 5 for periodic data, else the largest distance + 0.5 (between 2 and 5)."""
    if any(a.pbc.any() for a in train):
        return 5.0
    dmax = max((float(a.get_all_distances().max()) for a in train if len(a) > 1), default=0.0)
    return float(min(5.0, max(2.0, math.ceil((dmax + 0.5) * 4) / 4)))


def r_min_from_data(train: Sequence[Atoms], cutoff: float) -> float:
    """0.8 x the shortest interatomic distance of ``train`` (Å; 0.5 when there are no pairs), below ``cutoff``."""
    from mlpkit.descriptors.neighbors import neighbor_list

    shortest = math.inf
    for atoms in train:
        nl = neighbor_list(atoms, cutoff)
        if len(nl):
            vec = atoms.positions[nl.j] - atoms.positions[nl.i] + nl.shifts @ atoms.cell[:]
            shortest = min(shortest, float(np.linalg.norm(vec, axis=1).min()))
    value = 0.5 if not math.isfinite(shortest) else 0.8 * shortest
    return float(min(round(value, 3), 0.5 * cutoff))


def default_hyperparameters(train: Sequence[Atoms], **overrides: Any) -> dict[str, Any]:
    """Every hyperparameter, validated, with cutoff and r_min from ``train`` unless given."""
    hp = validate_settings(MTPHyperparameters, overrides, "mtp hyperparameter").model_dump()
    if hp["cutoff"] is None:
        hp["cutoff"] = cutoff_from_data(train)
    if hp["r_min"] is None:
        hp["r_min"] = r_min_from_data(train, hp["cutoff"])
    if hp["level"] is None:
        from mlpkit.data.records import species_of

        hp["level"] = default_level(len(species_of(train)), hp["max_rank"])
    return hp
