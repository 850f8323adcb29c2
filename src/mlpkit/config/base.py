"""Schema helpers shared by every configuration section: the section bases, the check that a method is
installed and usable, and the pydantic model inside a field's annotation."""

from __future__ import annotations

import difflib
import importlib.util

from pydantic import BaseModel, ConfigDict

from mlpkit.errors import MlpkitError


class _Section(BaseModel):
    """Base of the project file's sections: unknown keys are errors, defaults are validated too."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class _Strict(BaseModel):
    """Base of the active-learning settings: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


_METHOD_PACKAGES = {"pyscf": "pyscf", "gfn2": "tblite", "tblite": "tblite", "gpaw": "gpaw", "emt": "ase"}


def _check_method(method: str, options: dict | None, *, what: str) -> dict:
    """Build the labeler once (cheap: no calculation) so a missing package or a bad option fails now.

    Returns the labeler's full spec (every option, defaults included). Raises ValueError for pydantic.
    """
    from mlpkit.labelers import LABELERS, make_labeler

    name = str(method).lower()
    if name not in LABELERS:
        close = difflib.get_close_matches(name, list(LABELERS), n=2)
        raise ValueError(
            f"unknown {what} {method!r}; choose one of: {', '.join(sorted(LABELERS))}"
            + (f" (did you mean {' or '.join(close)}?)" if close else "")
        )
    package = _METHOD_PACKAGES.get(name)
    if package and importlib.util.find_spec(package) is None:
        raise ValueError(
            f"{what} {name!r} needs the Python package {package!r}, which is not installed; see "
            "docs/reference-methods.md for how to install it"
        )
    if options is None:
        return {}
    try:
        labeler = make_labeler(name, **options)
    except MlpkitError as exc:
        raise ValueError(f"{what} {name!r} cannot be used: {exc}") from None
    return labeler.spec()


def _model_in(annotation) -> type[BaseModel] | None:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


#: top-level keys only a project file (``mlpkit run``) has, and only an active-learning file (``mlpkit learn``) has
PROJECT_ONLY = frozenset({"project", "system", "domain", "sampling", "model", "validation", "active_learning",
                          "production", "speed", "report"})  # fmt: skip
LEARN_ONLY = frozenset({"name", "structure", "driver", "max_iterations", "label_budget", "initial", "explore", "trust",
                        "select", "committee", "stop", "test", "baseline"})  # fmt: skip


def file_kind(data: object) -> str | None:
    """``"project"`` or ``"learn"`` by the top-level keys of a configuration mapping; None when it cannot tell."""
    if not isinstance(data, dict):
        return None
    keys = set(data)
    project, learn = len(keys & PROJECT_ONLY), len(keys & LEARN_ONLY)
    if project > learn:
        return "project"
    if learn > project:
        return "learn"
    return None


def refuse_other_kind(data: object, expected: str, where: str) -> None:
    """A clear error naming the command that takes this file, when ``data`` is the other kind of configuration."""
    from mlpkit.errors import InputError

    kind = file_kind(data)
    if kind is None or kind == expected:
        return
    if kind == "learn":
        raise InputError(
            f"{where} is an active-learning file (keys such as {', '.join(sorted(set(data) & LEARN_ONLY)[:4])}), "
            f"not a project file: run it with `mlpkit learn {where}` (`mlpkit check` reads both kinds)"
        )
    raise InputError(
        f"{where} is a project file (sections such as {', '.join(sorted(set(data) & PROJECT_ONLY)[:4])}), not an "
        f"active-learning file: run it with `mlpkit run {where}`; its active_learning: section configures the loop"
    )
