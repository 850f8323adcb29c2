"""Hyperparameters and fit settings of the GAP family, typed, with data-derived defaults."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from ase import Atoms
from pydantic import Field

from mlpkit.schema import Settings, validate_settings

#: SOAP needs room for a neighbour shell: below this the power spectrum of a small molecule barely changes when a
#: bond angle does (the density of the far atoms sits in the cutoff's smoothing region)
MIN_CUTOFF = 3.5
#: beyond this the cost grows as r³ with little gain for the molecular and liquid data mlpkit targets
MAX_CUTOFF = 5.0


class GAPHyperparameters(Settings):
    """SOAP descriptor, kernel and sparse set of a Gaussian-approximation potential.

    ``cutoff: null`` takes it from the data: 5 Å for periodic cells; for isolated molecules the largest
    interatomic distance + 1 Å, between 3.5 and 5 Å.
    """

    cutoff: float | None = Field(None, gt=0, description="SOAP radial cutoff (Å); null: from the data")
    smoothing: float = Field(0.5, gt=0, description="width of the shifted-cosine smoothing before the cutoff (Å)")
    max_radial: int = Field(5, ge=0, le=15, description="highest radial index n of the GTO basis (n+1 functions)")
    max_angular: int = Field(4, ge=0, le=12, description="highest angular momentum l of the spherical expansion")
    atomic_width: float = Field(
        0.35,
        gt=0,
        description="Gaussian width of each neighbour's density (Å); 0.35 beat GAP's usual 0.5 on both water and "
        "ethanol (docs/benchmarks/gap.md)",
    )
    zeta: int = Field(4, ge=1, le=8, description="exponent ζ of the dot-product kernel (p̂·p̂')^ζ (dimensionless)")
    n_sparse: int = Field(
        1000,
        ge=1,
        description="sparse points per element (at most the element's environments); fit time grows as M², "
        "model size and the per-step cost of the variance as M",
    )
    sparse_method: Literal["fps", "cur"] = Field(
        "cur", description="how sparse points are chosen from the training environments: CUR leverage or FPS"
    )
    two_body: bool = Field(
        False, description="add a two-body GP on interatomic distances (per element pair) beside the SOAP term"
    )
    two_body_points: int = Field(20, ge=2, description="sparse distances per element pair of the two-body term")
    two_body_width: float = Field(
        0.5, gt=0, description="length scale θ of the two-body squared-exponential kernel (Å)"
    )
    two_body_delta: float | None = Field(
        None, gt=0, description="prior standard deviation of the two-body energy (eV); null: the SOAP term's δ"
    )
    delta: float | None = Field(
        None,
        gt=0,
        description="prior standard deviation of one atom's energy (eV); null: the RMS force component of the "
        "training data times 1 Å (the energy scale a displacement of 1 Å brings)",
    )


class GAPFitSettings(Settings):
    """Noise model and numerics of the sparse-GP solve (gap_fit's default_sigma and sparse_jitter)."""

    energy_sigma: float = Field(
        0.0005, gt=0, description="noise on total energies per atom (eV/atom); a frame of N atoms gets σ√N"
    )
    force_sigma: float = Field(
        0.001,
        gt=0,
        description="noise on each force component (eV/Å); DFT forces are nearly noise-free, and a larger σ caps "
        "the accuracy (water: 5 meV/Å gives a 1.5 meV/Å test error, 1 meV/Å gives 0.4; docs/benchmarks/gap.md)",
    )
    jitter: float = Field(
        1e-8, ge=0, description="added to the diagonal of the sparse-point kernel matrix (dimensionless, kernel ≤ 1)"
    )
    valid_fraction: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="fraction of the training data split off (seeded) for reported validation errors only; "
        "0: fit on everything (a GP has no epochs to stop early)",
    )


def cutoff_from_data(train: Sequence[Atoms]) -> float:
    """The data-derived cutoff (Å): 5 for periodic data, else the largest distance + 1, within [3.5, 5]."""
    if any(a.pbc.any() for a in train):
        return MAX_CUTOFF
    dmax = 0.0
    for a in train:
        if len(a) > 1:
            dmax = max(dmax, float(a.get_all_distances().max()))
    return float(min(MAX_CUTOFF, max(MIN_CUTOFF, math.ceil((dmax + 1.0) * 4) / 4)))


def default_hyperparameters(train: Sequence[Atoms], **overrides: Any) -> dict[str, Any]:
    """Every hyperparameter, validated, with the cutoff chosen from ``train`` unless given."""
    hp = validate_settings(GAPHyperparameters, overrides, "gap hyperparameter").model_dump()
    if hp["cutoff"] is None:
        hp["cutoff"] = cutoff_from_data(train)
    return hp


#: atoms per descriptor batch: bounds the memory of the SOAP gradients during fits and predictions
BATCH_ATOMS = 256
