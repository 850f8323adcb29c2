"""Numbers in the run report's tables."""

from __future__ import annotations

from typing import Any


def format_number(x: Any, fmt: str = "{:.3g}") -> str:
    """``x`` formatted with ``fmt`` for a report table; "–" for None, ``str(x)`` for what ``fmt`` cannot format."""
    if x is None:
        return "–"
    try:
        return fmt.format(x)
    except (TypeError, ValueError):
        return str(x)
