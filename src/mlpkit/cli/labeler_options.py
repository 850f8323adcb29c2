"""Reference methods from command-line options: ``--method``, ``--xc``, ``--basis``, ..., ``--param key=value``
(shared by ``mlpkit sample``, ``label``, ``validate`` and ``screen``)."""

from __future__ import annotations

import json

from mlpkit.errors import InputError


def parse_params(params: list[str] | None) -> dict:
    """``["basis=def2-TZVP", "max_cycle=50"]`` -> dict; values parsed as JSON where possible (numbers, lists)."""
    result: dict = {}
    for item in params or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param must look like key=value, got {item!r}")
        try:
            result[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            result[key.strip()] = value
    return result


def build_labeler(
    method: str,
    *,
    xc: str | None = None,
    basis: str | None = None,
    charge: int | None = None,
    spin: int | None = None,
    ecut: float | None = None,
    kpts: str | None = None,
    calculator: str | None = None,
    level_of_theory: str | None = None,
    threads: int | None = None,
    params: list[str] | None = None,
):
    """A labeler from command-line options; options left unset keep the method's defaults.

    ``--param key=value`` adds keyword arguments to the method, or, for ``--method ase``, to the ASE
    calculator class named by ``--calculator``.
    """
    from mlpkit.labelers import make_labeler

    extra = parse_params(params)
    kwargs: dict = {"xc": xc, "basis": basis, "charge": charge, "spin": spin, "ecut": ecut, "threads": threads}
    if kpts is not None:
        try:
            kwargs["kpts"] = [int(k) for k in kpts.replace(",", " ").split()]
        except ValueError:
            raise InputError(f"--kpts must be integers like '2,2,2', got {kpts!r}") from None
    if method.lower() == "ase":
        kwargs.update(calculator=calculator, level_of_theory=level_of_theory, parameters=extra)
    else:
        if calculator or level_of_theory:
            raise InputError("--calculator and --level-of-theory belong to --method ase")
        kwargs.update(extra)
    return make_labeler(method, **{k: v for k, v in kwargs.items() if v is not None})
