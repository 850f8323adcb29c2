"""The base of every typed settings block (family hyperparameters, fit settings, configuration sections)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mlpkit.errors import InputError


class Settings(BaseModel):
    """Base of every family's ``Hyperparameters`` and ``FitSettings``: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_default=True, protected_namespaces=())


class NoSettings(Settings):
    """A family without hyperparameters or fit settings of its own."""


def validate_settings(model: type[Settings], values: Mapping[str, Any], what: str) -> Settings:
    """``model(**values)``, with pydantic's errors turned into one :class:`InputError` listing every problem."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            key = ".".join(str(p) for p in err["loc"]) or "(all)"
            if err["type"] == "extra_forbidden":
                close = difflib.get_close_matches(key, list(model.model_fields), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                problems.append(f"unknown {what} {key!r}{hint}; known: {', '.join(model.model_fields)}")
            else:
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(f"{what} {key!r}: {msg} (got {err.get('input')!r})")
        raise InputError("; ".join(problems)) from None
