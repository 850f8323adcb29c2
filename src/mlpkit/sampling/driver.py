"""What drives the sampling MD and normal modes before the run's own model exists: a cheap method (an mlpkit
labeler such as gfn2 or emt) or any potential — a pretrained universal one (``chgnet``, ``chgnet:r2scan``) or a
saved mlpkit model directory. Only the frames picked are labelled with the reference method; the driver's own
energies and forces are never stored.

A driver spec is a labeler spec ``{"method": "gfn2", ...}``, a potential spec ``{"potential": "chgnet", ...}``
(further keys are :func:`mlpkit.potentials.registry.load_potential` options, e.g. ``dtype``), or a bare string:
a labeler name, else a potential. Both kinds offer what the samplers use: ``method`` (the name recorded with every
frame), ``calculator()`` (a fresh ASE calculator), ``check(atoms)`` and ``provenance()``.
"""

from __future__ import annotations

import os
from typing import Any

from ase import Atoms

from mlpkit.errors import InputError


def is_labeler_name(name: str) -> bool:
    """True if ``name`` is one of mlpkit's reference/cheap methods (gfn2, emt, pyscf, ...), not a potential."""
    from mlpkit.labelers import LABELERS

    return str(name).lower() in LABELERS


def driver_spec(value: str | dict[str, Any]) -> dict[str, Any]:
    """The dict spec of a driver given as a string (a labeler name → ``{"method": ...}``, anything else →
    ``{"potential": ...}``) or as a dict (returned as it is, after checking it names exactly one kind)."""
    if isinstance(value, dict):
        kinds = [k for k in ("method", "potential") if k in value]
        if len(kinds) != 1:
            raise InputError(
                "a driver needs exactly one of 'method' (a cheap method: gfn2, emt, ...) or 'potential' (a "
                f"pretrained name such as chgnet, or a saved model directory), got keys {sorted(value)}"
            )
        return dict(value)
    text = str(value)
    return {"method": text} if is_labeler_name(text) else {"potential": text}


class PotentialDriver:
    """A potential used as the sampling driver. The model is loaded on first use and kept (one load per run).

    ``spec``: what :func:`mlpkit.potentials.registry.load_potential` accepts (a model directory, ``chgnet``,
    ``chgnet:r2scan``); ``options``: its load options (``dtype``, ``device``, ...).
    """

    def __init__(self, spec: str | os.PathLike, **options: Any):
        self.spec = str(spec)
        self.options = dict(options)
        self._potential = None

    @property
    def method(self) -> str:
        """The name recorded with the frames this driver made: ``chgnet``, ``chgnet:r2scan``, ``model:/abs/dir``."""
        if os.path.exists(self.spec):
            return f"model:{os.path.abspath(self.spec)}"
        return self.spec

    def potential(self):
        """The loaded :class:`mlpkit.potentials.base.Potential`."""
        if self._potential is None:
            from mlpkit.potentials.registry import load_potential

            self._potential = load_potential(self.spec, **self.options)
        return self._potential

    def calculator(self):
        """An ASE calculator of the potential (energies eV, forces eV/Å)."""
        return self.potential().calculator()

    def check(self, atoms: Atoms) -> None:
        """Raise if the potential has no parameters for an element of ``atoms`` (before any MD is run)."""
        self.potential().check_species([atoms])

    def spec_dict(self) -> dict[str, Any]:
        return {"potential": self.spec, **self.options}

    def provenance(self) -> dict[str, Any]:
        """What drove the sampling: the spec, the family, and the model's own provenance (training method,
        training-set hash, base model) as written in its ``model.json``."""
        pot = self.potential()
        meta = dict(getattr(pot, "metadata", {}) or {})
        keep = {k: meta[k] for k in ("method", "base_model", "train_hash", "training_set_hash", "n_train") if k in meta}
        return {"kind": "potential", "driver": self.method, "family": pot.family, **keep}

    def __repr__(self) -> str:
        return f"PotentialDriver({self.spec!r})"


def make_driver(value: str | dict[str, Any]):
    """A driver from its spec (see the module docstring): an mlpkit labeler or a :class:`PotentialDriver`."""
    spec = driver_spec(value)
    if "method" in spec:
        from mlpkit.labelers import make_labeler

        return make_labeler(spec)
    options = {k: v for k, v in spec.items() if k != "potential"}
    return PotentialDriver(spec["potential"], **options)


def driver_provenance(driver) -> dict[str, Any]:
    """The provenance record of any driver (a labeler: its method and full spec)."""
    if isinstance(driver, PotentialDriver):
        return driver.provenance()
    spec = driver.spec() if hasattr(driver, "spec") else {}
    return {"kind": "method", "driver": driver.method, **({"spec": spec} if spec else {})}


def check_driver(value: str | dict[str, Any]) -> str:
    """Refuse a driver that cannot be used, before any calculation; return a short description of it.

    A labeler must be installed (and its options valid); a potential must be a saved model directory or a pretrained
    name whose weights are here (:func:`mlpkit.potentials.registry.check_potential`, which loads no weights).
    Raises :class:`InputError` with the reason.
    """
    import difflib

    from mlpkit.labelers import LABELERS

    spec = driver_spec(value)
    if "method" in spec:
        from mlpkit.labelers import make_labeler

        make_labeler(spec)
        return f"method {spec['method']}"
    from mlpkit.potentials.registry import check_potential

    target = str(spec["potential"])
    try:
        return check_potential(target)
    except InputError as exc:
        close = difflib.get_close_matches(target.lower(), list(LABELERS), n=1)
        hint = f" (or did you mean the method {close[0]!r}?)" if close and not os.path.exists(target) else ""
        raise InputError(f"{exc}{hint}") from None
