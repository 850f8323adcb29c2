"""Where families are found: built-ins by name (imported only when used), third-party ones by entry point.

A third-party package adds a family with one entry in its ``pyproject.toml``::

    [project.entry-points."mlpkit.potentials"]
    myfamily = "my_package.potential:MyPotential"

and a test suite can add one at run time with :func:`register_family` (a class decorator). Nothing outside a
family's own folder names the family: code that needs one goes through :func:`family_class`,
:func:`create_potential` and :func:`load_potential`.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

from ase import Atoms

from mlpkit.errors import InputError
from mlpkit.potentials.base import Potential
from mlpkit.potentials.store import is_model_dir, read_model_json

ENTRY_POINT_GROUP = "mlpkit.potentials"

#: built-in families: name → "module:Class", imported on first use (an optional dependency missing is an error
#: only when that family is asked for)
BUILTIN: dict[str, str] = {
    "bpnn": "mlpkit.potentials.bpnn:BPNNPotential",
    "chgnet": "mlpkit.potentials.universal:CHGNetPotential",
    "mace": "mlpkit.potentials.mace:MACEPotential",
    "committee": "mlpkit.uncertainty.committee:Committee",
    "delta": "mlpkit.potentials.delta:DeltaPotential",
    "gap": "mlpkit.potentials.gap:GAPPotential",
    "mc_dropout": "mlpkit.uncertainty.mc_dropout:MCDropout",
    "mtp": "mlpkit.potentials.mtp:MTPPotential",
    "snap": "mlpkit.potentials.snap:SNAPPotential",
}

_REGISTERED: dict[str, type[Potential]] = {}


def register_family(cls: type[Potential]) -> type[Potential]:
    """Class decorator: make ``cls`` a family known by ``cls.family`` (for tests and run-time plugins)."""
    if not (isinstance(cls, type) and issubclass(cls, Potential)):
        raise TypeError(f"{cls!r} is not a Potential subclass")
    _REGISTERED[cls.family] = cls
    return cls


def unregister_family(name: str) -> None:
    """Forget a family added with :func:`register_family` (tests clean up after themselves)."""
    _REGISTERED.pop(name, None)


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_families() -> list[str]:
    """Every family name: built-in, registered at run time, and installed through entry points."""
    return sorted({*BUILTIN, *_REGISTERED, *_entry_points()})


def family_class(name: str) -> type[Potential]:
    """The :class:`Potential` subclass of family ``name``; a clear error for an unknown or uninstalled one."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] == "mlpkit":
                raise  # a bug of mlpkit's own, not a missing optional package
            raise InputError(
                f"model family {name!r} needs the Python package {exc.name!r}, which is not installed "
                "(see docs/user-guide.md, 'Model families', for its install line)"
            ) from exc
    else:
        eps = _entry_points()
        if name not in eps:
            close = difflib.get_close_matches(name, known_families(), n=1)
            raise InputError(
                f"unknown model family {name!r}"
                + (f" (did you mean {close[0]}?)" if close else "")
                + f"; known: {', '.join(known_families())}"
            )
        cls = eps[name].load()
    if getattr(cls, "family", None) != name:
        raise InputError(f"{cls!r} registered as family {name!r} declares family {getattr(cls, 'family', None)!r}")
    return cls


def create_potential(family: str, train: Sequence[Atoms], **hyperparameters: Any) -> Potential:
    """An untrained potential of ``family`` for the elements of ``train``, with data-derived defaults.

    ``hyperparameters`` override the family's defaults (its ``Hyperparameters`` model lists them).
    """
    train = list(train)
    if not train:
        raise InputError("create_potential needs the training configurations (to choose species and defaults)")
    return family_class(family).from_data(train, **hyperparameters)


def load_potential(path: str | os.PathLike, **options: Any) -> Potential:
    """Load any saved potential: reads the family from ``model.json`` and dispatches to its class.

    ``path`` may also name a pretrained model of a family that has them, ``FAMILY`` or ``FAMILY:MODEL``
    (e.g. ``"chgnet"``, ``"chgnet:r2scan"``): the family's ``from_pretrained(model)`` loads it, offline.
    """
    if not is_model_dir(path) and not os.path.exists(path):
        family, _, model = str(path).partition(":")
        if family in known_families():
            cls = family_class(family)
            if cls.capabilities.pretrained:
                return cls.from_pretrained(model or None, **options)
            raise InputError(f"{path!r}: the {family} family has no pretrained models; give a model directory")
    meta = read_model_json(path)
    return family_class(meta["family"]).load(path, **options)


def check_potential(spec: str | os.PathLike) -> str:
    """Refuse, without loading weights, anything :func:`load_potential` could not load; return what ``spec`` is.

    ``spec``: a saved model directory (its ``model.json`` names an installed family) or a pretrained name
    (``chgnet``, ``chgnet:r2scan``) whose weights are on this machine. Returns ``"FAMILY model at PATH"`` or
    ``"pretrained FAMILY[:MODEL]"``; raises :class:`InputError` with the reason otherwise.
    """
    text = str(spec)
    if os.path.exists(text):
        if not is_model_dir(text):
            raise InputError(f"{text} is not a saved mlpkit model (no model.json in it)")
        family = read_model_json(text).get("family")
        family_class(str(family))  # an unknown family or a missing optional package fails here
        return f"{family} model at {text}"
    family, _, model = text.partition(":")
    if family in known_families():
        cls = family_class(family)
        if not cls.capabilities.pretrained:
            raise InputError(f"{text!r}: the {family} family has no pretrained models; give a model directory")
        cls.check_pretrained(model or None)
        return f"pretrained {text}"
    close = difflib.get_close_matches(family, known_families(), n=1)
    raise InputError(
        f"{text!r} is neither a saved mlpkit model directory (no such path) nor a pretrained model name "
        "(FAMILY or FAMILY:MODEL of a family that ships models, e.g. chgnet or chgnet:r2scan)"
        + (f"; did you mean {close[0]!r}?" if close else "")
    )
