"""Validation errors as one readable message: each problem with its key path and a hint from the schema."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from mlpkit.config.base import _model_in


def _hint(loc: tuple, err_type: str, model: type[BaseModel]) -> str | None:
    """A hint for one validation error: close key names for unknown keys, else the field's description
    (and default) of the deepest schema field on the path."""
    cls: Any = model
    info = None
    resolved = 0
    for part in loc:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            break
        fields = cls.model_fields
        if part not in fields:
            if err_type == "extra_forbidden":
                close = difflib.get_close_matches(str(part), list(fields), n=2, cutoff=0.6)
                known = ", ".join(fields)
                return (f"did you mean {' or '.join(close)}? " if close else "") + f"keys allowed here: {known}"
            break
        info = fields[part]
        resolved += 1
        cls = _model_in(info.annotation)
    if info is None:
        return None
    desc = info.description or ""
    if resolved == len(loc) and cls is None:
        default = info.get_default(call_default_factory=True)
        return f"{desc} (default: {default!r})" if desc else f"default: {default!r}"
    return desc or None


def format_validation_error(
    exc: ValidationError, where: str = "configuration", model: type[BaseModel] | None = None
) -> str:
    """One readable multi-line message: each problem as ``key.path: what is wrong`` and an indented hint (from
    the schema ``model``, when given)."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        path = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if msg.startswith("@"):  # "@sub.key message": a section-level check pointing at one of its keys
            sub, _, msg = msg[1:].partition(" ")
            loc = (*loc, *sub.split("."))
            path = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif "input" in err and err["type"] not in ("missing", "value_error") and not isinstance(err["input"], dict):
            msg = f"{msg} (got {err['input']!r})"
        lines.append(f"  {path}: {msg}")
        hint = _hint(loc, err["type"], model) if model is not None else None
        if hint:
            lines.append(f"    hint: {hint}")
    n = len(exc.errors())
    return f"{where} has {n} problem{'s' if n != 1 else ''}:\n" + "\n".join(lines)
