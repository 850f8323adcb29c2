"""The ``physics`` sub-section of active learning: the physics checklist in the stopping rule (which failed checks
send the loop back for targeted labels, and how many)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from mlpkit.config.base import _Strict

#: checks of the checklist that more sampling can fix, and what each sends the loop back to label
FIXABLE_CHECKS = ("vibrations", "nve", "max_force", "extrapolation", "test_errors")


class PhysicsSettings(_Strict):
    """Validation in the stopping rule: when the loop stops, the physics checklist of the committee runs; a failed
    check that sampling can fix sends the loop back with configurations aimed at it (labelled, trained on):
    vibrations → normal-mode displacements around the committee's and the reference's minima; nve → frames where
    an NVE run left the trusted region; max_force / extrapolation → configurations near the offending frames;
    test_errors → more data at the temperatures whose test error exceeds the ratio bar. Capped by rounds and labels
    (these labels come on top of label_budget)."""

    enabled: bool = Field(True, description="run the physics checklist when the loop stops, and act on it")
    max_rounds: int = Field(2, ge=0, description="rounds of targeted labels at most (0: check and report only)")
    max_labels: int = Field(
        20, ge=0, description="targeted labels at most over all rounds, on top of label_budget (test set excluded)"
    )
    labels_per_check: int = Field(4, ge=1, description="targeted labels per failed check and round")
    checks: list[Literal["vibrations", "nve", "max_force", "extrapolation", "test_errors"]] = Field(
        default_factory=lambda: list(FIXABLE_CHECKS),
        description="which failed checks send the loop back (the others are reported only)",
    )
    normal_mode_temperature: float | None = Field(
        None, gt=0, description="K, of the normal-mode displacements; null: the lowest exploration temperature"
    )
    validation: dict[str, Any] = Field(
        default_factory=dict,
        description="checklist settings (mlpkit.validation.ValidationSettings) for the checks inside the loop, "
        "over the project's validation section (e.g. {nve_steps: 1000})",
    )

    @field_validator("validation")
    @classmethod
    def _settings(cls, v: dict[str, Any]) -> dict[str, Any]:
        from mlpkit.validation.settings import ValidationSettings

        try:
            ValidationSettings(**v)
        except ValidationError as exc:
            bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"not checklist settings: {bad}") from None
        return v

    @field_validator("checks")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"checks are listed twice: {v}")
        return v


__all__ = ["FIXABLE_CHECKS", "PhysicsSettings"]
