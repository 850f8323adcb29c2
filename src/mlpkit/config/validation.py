"""The validation section: the quality checklist's thresholds, and whether it runs."""

from __future__ import annotations

from pydantic import Field

from mlpkit.validation.settings import ValidationSettings


class ValidationSection(ValidationSettings):
    """The quality checklist (mlpkit validate) run on the trained potential."""

    enabled: bool = Field(True, description="run the checklist after training and after active learning")
