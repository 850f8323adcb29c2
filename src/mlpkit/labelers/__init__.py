"""Reference methods ("labelers"): PySCF DFT (default), GFN2-xTB via tblite, GPAW, any ASE calculator, EMT.

``make_labeler("pyscf", xc="PBE", basis="def2-SVP")`` or ``make_labeler({"method": "pyscf", ...})`` builds
one by name; every labeler's :meth:`~mlpkit.labelers.base.Labeler.spec` turns back into an equal one.
"""

from __future__ import annotations

import importlib

from mlpkit.errors import InputError, MissingDependencyError
from mlpkit.labelers.base import CalculatorLabeler, Labeler

#: registry name -> (module, class); modules are imported only when asked for, so optional codes
#: (GPAW) cost nothing when absent.
LABELERS: dict[str, tuple[str, str]] = {
    "pyscf": ("mlpkit.labelers.pyscf", "PySCFLabeler"),
    "gfn2": ("mlpkit.labelers.tblite", "TBLiteLabeler"),
    "tblite": ("mlpkit.labelers.tblite", "TBLiteLabeler"),
    "gpaw": ("mlpkit.labelers.gpaw", "GPAWLabeler"),
    "ase": ("mlpkit.labelers.ase_calculator", "ASECalculatorLabeler"),
    "emt": ("mlpkit.labelers.emt", "EMTLabeler"),
}


def make_labeler(spec: str | dict | Labeler, **kwargs) -> Labeler:
    """Build a labeler from a name plus keyword arguments, or from a spec dict ``{"method": name, ...}``."""
    if isinstance(spec, Labeler):
        return spec
    if isinstance(spec, dict):
        kwargs = {**{k: v for k, v in spec.items() if k != "method"}, **kwargs}
        spec = spec.get("method", "")
    name = str(spec).lower()
    if name not in LABELERS:
        raise InputError(f"unknown method {spec!r}; choose one of: {', '.join(sorted(LABELERS))}")
    module_name, class_name = LABELERS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"method {name!r} needs a package that is not installed ({exc.name or exc}); see docs/user-guide.md"
        ) from exc
    cls = getattr(module, class_name)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InputError(f"bad options for method {name!r}: {exc}") from exc


__all__ = ["LABELERS", "CalculatorLabeler", "Labeler", "make_labeler"]
