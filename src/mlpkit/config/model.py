"""The model section: potential family, hyperparameters, committee and fit settings; and the committee settings
of the learn configuration. (Moved here verbatim; the model section is being reworked into a union keyed on the
family.)"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mlpkit.config.base import _Section, _Strict
from mlpkit.training import FIT_DEFAULTS


class CommitteeSection(_Section):
    """The ensemble whose spread is the uncertainty (source 5.4: NNPs from different seeds / data splits)."""

    n_members: int = Field(4, ge=2, le=32, description="committee members (different seeds)")
    bootstrap: bool = Field(True, description="each member trains on a bootstrap resample of the training set")
    warm_start: bool = Field(
        True, description="active learning: start each round's members from the previous round's (False: from scratch)"
    )


class FitSection(_Section):
    """How each potential is fitted (defaults: mlpkit.training.FIT_DEFAULTS). The share of labels held out for
    early stopping and calibration is active_learning.select.valid_fraction (one split for the first committee
    and the loop)."""

    epochs: int = Field(FIT_DEFAULTS["epochs"], ge=1, description="maximum training epochs")
    force_weight: float = Field(
        FIT_DEFAULTS["force_weight"],
        ge=0,
        description="weight of the force MSE (eV²/Å²) against the per-atom energy MSE (eV²/atom²); the source "
        "warns that ignoring forces is a pitfall",
    )
    learning_rate: float = Field(
        FIT_DEFAULTS["learning_rate"],
        gt=0,
        le=1,
        description="initial Adam learning rate (the source: lower it, e.g. to 1e-4, if training does not converge)",
    )
    lr_final: float = Field(FIT_DEFAULTS["lr_final"], gt=0, le=1, description="learning rate at the last epoch")
    scheduler: Literal["exponential", "cosine", "plateau", "constant"] = Field(
        FIT_DEFAULTS["scheduler"], description="learning-rate schedule from learning_rate to lr_final"
    )
    batch_size: int = Field(FIT_DEFAULTS["batch_size"], ge=1, description="configurations per optimiser step")
    patience: int = Field(
        FIT_DEFAULTS["patience"], ge=1, description="early stopping: epochs without validation improvement"
    )
    keep: Literal["best", "last"] = Field(
        FIT_DEFAULTS["keep"],
        description="'best': weights of the best validation epoch (early stopping); 'last': all epochs, final "
        "weights of the decayed schedule (steadier when the validation share is a handful of configurations)",
    )


class ModelSection(_Section):
    """The potential family and how it is trained."""

    family: str = Field("bpnn", description="potential family (bpnn: Behler-Parrinello neural network)")
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="family hyperparameters; bpnn: cutoff (Å, 6.0), n_radial (16), n_angular (6), "
        "angular_order (3), hidden (layer widths, [64, 64]), activation (silu), dropout (0.0), dtype (float64); "
        "empty = defaults derived from the data (mlpkit.potentials.bpnn)",
    )
    committee: CommitteeSection = Field(default_factory=CommitteeSection, description="ensemble for uncertainty")
    fit: FitSection = Field(default_factory=FitSection, description="fit settings")

    @model_validator(mode="after")
    def _known_hyperparameters(self) -> ModelSection:
        if self.family == "bpnn":
            from mlpkit.potentials.bpnn import DEFAULT_HYPERPARAMETERS

            known = {*DEFAULT_HYPERPARAMETERS, "verlet_skin"}
            for key in self.hyperparameters:
                if key not in known:
                    close = difflib.get_close_matches(key, sorted(known), n=1)
                    raise ValueError(
                        f"@hyperparameters.{key} unknown bpnn hyperparameter"
                        + (f" (did you mean {close[0]}?)" if close else "")
                        + f"; known: {', '.join(sorted(known))}"
                    )
        return self

    @field_validator("hyperparameters")
    @classmethod
    def _cutoff_positive(cls, v: dict[str, Any]) -> dict[str, Any]:
        cutoff = v.get("cutoff")
        if cutoff is not None:
            if not isinstance(cutoff, (int, float)) or isinstance(cutoff, bool):
                raise ValueError(f"@cutoff must be a number of Å, got {cutoff!r}")
            if cutoff <= 0:
                raise ValueError(f"@cutoff must be > 0 Å, got {cutoff}")
        if "dropout" in v and not (isinstance(v["dropout"], (int, float)) and 0 <= v["dropout"] < 1):
            raise ValueError(f"@dropout must be in [0, 1), got {v['dropout']!r}")
        return v

    @field_validator("family")
    @classmethod
    def _family_known(cls, v: str) -> str:
        from mlpkit.potentials.registry import known_families

        # "committee" wraps members of another family (model.committee); "bpnn" is the built-in default
        known = sorted((set(known_families()) | {"bpnn"}) - {"committee"})
        if v not in known:
            raise ValueError(f"unknown model family {v!r}; known: {', '.join(known)}")
        return v


class CommitteeSettings(_Strict):
    family: str | list[str] = Field("bpnn", description="one family, or several (query by committee)")
    n_members: int = Field(4, ge=2)
    bootstrap: bool = True
    hyperparameters: dict[str, Any] = Field(default_factory=dict, description="for create_potential")
    fit: dict[str, Any] = Field(default_factory=dict, description="for Potential.fit (epochs, learning_rate...)")
    warm_start: bool = Field(True, description="start each iteration's members from the previous ones")
