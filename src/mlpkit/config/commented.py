"""A configuration as YAML with every key present and its description as a comment, generated from the
schema (so the documentation and the defaults cannot drift apart)."""

from __future__ import annotations

import textwrap
from typing import Any

import yaml
from pydantic import BaseModel

from mlpkit.config.base import _model_in


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True).strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return text.removesuffix("...").strip()


def _plain(value: Any) -> Any:
    """``value`` with every pydantic model in it (a committee's ``members`` list) turned into plain YAML data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _comment(text: str, indent: str, width: int = 100) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, width=width - len(indent) - 2)]


def _emit(model: BaseModel, indent: str, out: list[str]) -> None:
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        doc = " ".join(s.strip() for s in (type(value).__doc__ or "").strip().splitlines())
        if isinstance(value, BaseModel) and doc:
            out.extend(_comment(doc, indent))  # a section: its class docstring says more than the field's
        elif info.description:
            out.extend(_comment(info.description, indent))
        sub = _model_in(info.annotation)
        if value is None and sub is not None:  # an optional section: show its keys, commented out
            example = yaml.safe_dump({name: sub().model_dump(mode="json")}, default_flow_style=False, sort_keys=False)
            out.append(f"{indent}# for example:")
            out.extend(f"{indent}#   {line}" for line in example.rstrip().splitlines())
        plain = None if isinstance(value, BaseModel) else _plain(value)
        if isinstance(value, BaseModel):
            out.append(f"{indent}{name}:")
            _emit(value, indent + "  ", out)
        elif (isinstance(plain, dict) and plain) or (
            isinstance(plain, list) and any(isinstance(p, dict) for p in plain)
        ):
            out.append(f"{indent}{name}:")
            block = yaml.safe_dump(plain, default_flow_style=False, sort_keys=False, allow_unicode=True)
            out.extend(f"{indent}  {line}" for line in block.rstrip().splitlines())
        else:
            out.append(f"{indent}{name}: {_scalar(plain)}")
        if not indent:
            out.append("")


def commented_text(config: BaseModel, header: str | None = None) -> str:
    """``config`` as YAML, every key present and preceded by its description as a comment."""
    out: list[str] = []
    if header:
        out.extend(f"# {line}" if line else "#" for line in header.splitlines())
        out.append("")
    _emit(config, "", out)
    return "\n".join(out).rstrip() + "\n"
