"""Hyperparameters of the Behler-Parrinello family, typed, with the defaults measured on small data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from ase import Atoms
from pydantic import Field, field_validator

from mlpkit.schema import Settings, validate_settings


class BPNNHyperparameters(Settings):
    """Descriptor (atom-centred symmetry functions) and networks of a Behler-Parrinello potential.

    ``cutoff: null`` takes it from the data: 6 Å for periodic cells; for isolated molecules the largest
    interatomic distance in the data + 0.5 Å (at most 6 Å), so the radial grid resolves bond lengths.
    """

    cutoff: float | None = Field(None, gt=0, description="radial cutoff (Å); null: from the data")
    n_radial: int = Field(16, ge=1, description="Gaussian G2 centres per element")
    angular_cutoff: float | None = Field(
        None, gt=0, description="cutoff of the angular functions (Å); null: min(cutoff, 4)"
    )
    n_angular: int = Field(6, ge=0, description="Gaussian radial parts of the G5 functions per element pair (0: none)")
    angular_order: int = Field(3, ge=0, le=6, description="highest power of cos θ")
    r_min: float = Field(0.6, ge=0, description="first Gaussian centre (Å)")
    width: float = Field(1.0, gt=0, description="Gaussian width in units of the centre spacing")
    cutoff_function: Literal["cosine", "polynomial"] = Field("cosine", description="smooth cutoff function")
    hidden: list[int] = Field(
        [64, 64],
        min_length=1,
        description="widths of the hidden layers of each element's network (with 16-40 training configurations "
        "16x16 generalises better: docs/benchmarks/pipeline.md)",
    )
    activation: Literal["silu", "tanh", "softplus", "celu", "gelu"] = Field("silu", description="activation")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after each hidden layer (> 0 enables MC-dropout)")
    dtype: Literal["float32", "float64"] = Field(
        "float64", description="float64: exact derivatives; float32: faster MD"
    )
    device: str = Field("cpu", description="cpu, cuda or auto")
    init_seed: int = Field(0, description="seed of the random initial weights")
    feature_std_floor: float = Field(
        0.02,
        ge=0,
        lt=1,
        description="lower bound of each feature's scale, as a fraction of the largest RMS feature value of its "
        "element in the training data: keeps standardised features moderate outside narrow data "
        "(docs/benchmarks/bpnn-extrapolation.md)",
    )
    verlet_skin: float = Field(0.5, ge=0, description="skin (Å) of the neighbour list kept between MD steps")

    @field_validator("hidden", mode="before")
    @classmethod
    def _one_layer(cls, v: Any) -> Any:
        return [v] if isinstance(v, int) and not isinstance(v, bool) else v  # `--set hidden=16`: one layer

    @field_validator("hidden")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(h < 1 for h in v):
            raise ValueError("layer widths must be >= 1")
        return v


def cutoff_from_data(train: Sequence[Atoms]) -> float:
    """The data-derived cutoff (Å): 6 for periodic data, else the largest distance + 0.5 (between 2 and 6)."""
    if any(a.pbc.any() for a in train):
        return 6.0
    dmax = 0.0
    for a in train:
        if len(a) > 1:
            dmax = max(dmax, float(a.get_all_distances().max()))
    return float(min(6.0, max(2.0, math.ceil((dmax + 0.5) * 4) / 4)))


def default_hyperparameters(train: Sequence[Atoms], **overrides: Any) -> dict[str, Any]:
    """Every hyperparameter, validated, with the cutoff chosen from ``train`` unless given."""
    hp = validate_settings(BPNNHyperparameters, overrides, "bpnn hyperparameter").model_dump()
    if hp["cutoff"] is None:
        hp["cutoff"] = cutoff_from_data(train)
    return hp
