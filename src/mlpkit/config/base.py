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
