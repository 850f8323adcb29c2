"""Typed hyperparameters and fit settings of the MACE family (defaults and why in each description)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mlpkit.schema import Settings
from mlpkit.training import TrainerSettings

#: message-passing blocks of mace-torch 0.3.16 this family builds (names as in ``mace.modules.interaction_classes``)
INTERACTIONS = ("RealAgnosticResidualInteractionBlock", "RealAgnosticInteractionBlock")


class MACEHyperparameters(Settings):
    """Architecture of a ``ScaleShiftMACE`` (mace-torch 0.3.16), built in Python from these numbers.

    Defaults are those of the measured water anchor (32 channels, L=1, r_max 5 Å, float64: 1.5 meV/Å with MACE's own
    CLI, ../shared/anchors.md) and otherwise mace-torch's own defaults. ``avg_num_neighbors: null`` is taken from
    the training data (mean number of neighbours within ``r_max``), as MACE's CLI does.
    """

    channels: int = Field(32, ge=1, description="channels of each irrep in the hidden features (MACE's num_channels)")
    max_L: int = Field(1, ge=0, le=3, description="highest angular momentum L of the hidden features (0: invariant)")
    r_max: float = Field(5.0, gt=0, description="cutoff radius (Å)")
    num_interactions: int = Field(
        2, ge=1, description="message-passing layers (receptive field: num_interactions · r_max)"
    )
    correlation: int = Field(3, ge=1, le=4, description="body order of each layer's symmetric product, minus one")
    max_ell: int = Field(3, ge=1, le=4, description="highest ℓ of the spherical harmonics of the edge directions")
    num_bessel: int = Field(8, ge=1, description="Bessel radial basis functions")
    num_polynomial_cutoff: int = Field(5, ge=2, description="power p of the polynomial cutoff envelope (smoothness)")
    radial_mlp: list[int] = Field([64, 64, 64], min_length=1, description="hidden widths of the radial MLP")
    readout_hidden: int = Field(16, ge=1, description="hidden scalars of the last layer's non-linear readout")
    interaction: Literal[INTERACTIONS] = Field(  # type: ignore[valid-type]
        "RealAgnosticResidualInteractionBlock", description="interaction block of layers after the first"
    )
    interaction_first: Literal[INTERACTIONS] = Field(  # type: ignore[valid-type]
        "RealAgnosticInteractionBlock", description="interaction block of the first layer"
    )
    use_reduced_cg: bool = Field(True, description="reduced Clebsch-Gordan basis of the product (mace-torch default)")
    avg_num_neighbors: float | None = Field(
        None, gt=0, description="message normalisation (neighbours per atom within r_max); null: from the data"
    )
    dtype: Literal["float32", "float64"] = Field(
        "float64", description="float64: exact derivatives (tests, training); float32: faster prediction"
    )
    device: str = Field("auto", description="cpu, cuda, cuda:N or auto (CUDA when present)")
    init_seed: int = Field(0, description="seed of the random initial weights")

    @field_validator("radial_mlp")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(h < 1 for h in v):
            raise ValueError("layer widths must be >= 1")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("cpu", "cuda", "auto") and not v.startswith("cuda:"):
            raise ValueError("device must be cpu, cuda, cuda:N or auto")
        return v


class MACEFitSettings(TrainerSettings):
    """:class:`mlpkit.training.TrainerSettings` with MACE's own defaults where they differ.

    MACE's CLI weights the force MSE 100x the per-atom energy MSE and starts Adam at 0.01 with batches of 10;
    mlpkit's exponential schedule then decays to ``lr_final`` over ``epochs``.
    """

    epochs: int = Field(600, ge=1, description="training epochs (the schedule decays over all of them)")
    force_weight: float = Field(
        100.0, ge=0, description="weight of the force MSE (eV²/Å²) against the per-atom energy MSE (MACE: 100)"
    )
    learning_rate: float = Field(1e-2, gt=0, le=1, description="initial Adam learning rate (MACE: 0.01)")
    lr_final: float = Field(1e-4, gt=0, le=1, description="learning rate at the last epoch")
    batch_size: int = Field(5, ge=1, description="configurations per optimiser step")
    ema_decay: float = Field(
        0.99,
        ge=0,
        lt=1,
        description="moving average of the weights after every step (MACE's --ema 0.99), kept as the model; on "
        "ethanol at 60 epochs it turned 34.1 into 28.2 meV/Å from the same training run (docs/benchmarks/mace.md); "
        "0 = off",
    )
