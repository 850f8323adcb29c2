"""The model section of both configuration files: a union keyed on ``family``.

The project file's ``model:`` is a :class:`mlpkit.uncertainty.model_spec.ModelSpec` (family, hyperparameters and fit
settings checked by the family's own typed models, and the committee built from it); the learn file's
``committee:`` says the same in one flat block (family, hyperparameters, fit, n_members, bootstrap, warm_start,
members, dropout_passes). Either way, `mlpkit check` refuses a bad hyperparameter of any family, with its key path
and the allowed keys, before any DFT runs; and a model that would give active learning no uncertainty is refused too.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from mlpkit.config.base import _Strict
from mlpkit.uncertainty.model_spec import CommitteeSpec, MemberSpec, ModelSpec, uncertainty_kind


class ModelSection(ModelSpec):
    """The potential family, its hyperparameters and fit settings, and the committee for uncertainty."""

    model_config = ConfigDict(extra="forbid", validate_default=True, protected_namespaces=())

    @model_validator(mode="after")
    def _fit_written_out(self) -> ModelSection:
        # every fit setting with its value (what the fit will use; the commented YAML and the fingerprints show them)
        self.fit = self.fit_settings()
        return self


class CommitteeSettings(_Strict):
    """The learn file's model: a family (or several) and the committee trained on every round's labels."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    family: str | list[str] = Field(
        "bpnn", description="one family, or several (query by committee across algorithms, cycled over members)"
    )
    n_members: int = Field(
        4, ge=1, le=32, description="committee members; 1 = the potential alone, with its own uncertainty"
    )
    bootstrap: bool = Field(
        False, description="each member trains on a bootstrap resample (off: each sees every label, steadier)"
    )
    hyperparameters: dict[str, Any] = Field(default_factory=dict, description="the family's hyperparameters")
    fit: dict[str, Any] = Field(default_factory=dict, description="the family's fit settings (epochs, ...)")
    warm_start: bool = Field(
        False, description="start each round's members from the previous ones (off: from scratch, steadier)"
    )
    members: list[MemberSpec] | None = Field(
        None, description="member kinds with their own hyperparameters and fit settings (cycled over n_members)"
    )
    dropout_passes: int = Field(
        0,
        ge=0,
        le=1000,
        description="MC-dropout: n_members 1, hyperparameters {dropout: 0.1}; the spread of this many stochastic "
        "passes is the uncertainty (0: off)",
    )

    @model_validator(mode="after")
    def _a_model_with_uncertainty(self) -> CommitteeSettings:
        spec = self.spec()  # raises ValueError (key path first) for a bad family, hyperparameter or fit setting
        if uncertainty_kind(spec) == "none":
            raise ValueError(
                f"@n_members a single {spec.family} potential has no uncertainty to drive active learning; use "
                "n_members >= 2 (a committee), dropout_passes (MC-dropout) or a family with its own (`mlpkit "
                "families` lists them)"
            )
        return self

    def spec(self) -> ModelSpec:
        """The same model as a :class:`ModelSpec` (what :func:`mlpkit.uncertainty.fit_model` trains)."""
        families = [self.family] if isinstance(self.family, str) else list(self.family)
        members = self.members
        if members is None and len(families) > 1:
            members = [MemberSpec(family=f, hyperparameters=self.hyperparameters, fit=self.fit) for f in families]
        return ModelSpec(
            family=families[0],
            hyperparameters=self.hyperparameters,
            fit=self.fit,
            committee=CommitteeSpec(
                n_members=self.n_members,
                bootstrap=self.bootstrap,
                warm_start=self.warm_start,
                members=members,
                dropout_passes=self.dropout_passes,
            ),
        )


__all__ = ["CommitteeSettings", "ModelSection"]
