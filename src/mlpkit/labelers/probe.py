"""Try a reference method once, on a tiny molecule, before trusting a long job to it.

External codes (``--method ase`` with a file-based calculator such as Quantum ESPRESSO or VASP, and GPAW)
can be installed as Python packages yet unusable: no binary on the PATH, no pseudopotentials, no ASE
configuration. Such a set-up fails every calculation of a labelling job; one tiny calculation says so in a
second, with the code's own reason in full::

    from mlpkit.labelers.probe import probe_method
    problem = probe_method({"method": "ase", "calculator": "ase.calculators.espresso:Espresso"})
    if problem:
        print(problem)   # "ase:Espresso cannot run: ... No configuration of 'espresso'. See 'https://...'"
"""

from __future__ import annotations

import tempfile

from ase import Atoms

from mlpkit.errors import MlpkitError
from mlpkit.labelers import Labeler, make_labeler

#: methods that run a code outside mlpkit's own dependencies, and so are worth a trial calculation
EXTERNAL_METHODS = ("ase", "gpaw")


def tiny_molecule(periodic: bool = False) -> Atoms:
    """H₂ (0.74 Å) centred in a 6 Å cube: the cheapest calculation every method here can do.

    ``periodic=True`` for external codes: most of them (VASP, Quantum ESPRESSO, GPAW's plane waves) refuse a
    non-periodic cell, while the molecular ones (ORCA, ...) ignore the cell.
    """
    atoms = Atoms("H2", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 0.74]], cell=[6.0, 6.0, 6.0], pbc=periodic)
    atoms.center()
    return atoms


def is_external(labeler: Labeler | str | dict) -> bool:
    """True for methods that call a code outside mlpkit's dependencies (:data:`EXTERNAL_METHODS`)."""
    if isinstance(labeler, Labeler):
        name = labeler.name
    elif isinstance(labeler, dict):
        name = str(labeler.get("method", ""))
    else:
        name = str(labeler)
    return name.lower() in EXTERNAL_METHODS


def _in_scratch(labeler: Labeler, directory: str) -> Labeler:
    """A copy of an ``ase`` labeler whose file-based calculator works in ``directory`` (not the user's cwd)."""
    from mlpkit.labelers.ase_calculator import ASECalculatorLabeler, _writes_files

    if isinstance(labeler, ASECalculatorLabeler) and _writes_files(labeler._resolve()):
        spec = labeler.spec()
        spec["parameters"] = {**spec.get("parameters", {}), "directory": directory}
        return make_labeler(spec)
    return labeler


def probe_method(spec: Labeler | str | dict, atoms: Atoms | None = None) -> str | None:
    """Build the method and run one calculation on ``atoms`` (default :func:`tiny_molecule`, periodic for
    external codes).

    Returns ``None`` when it works, else one message naming the method with the reason in full (a missing
    package, binary, pseudopotential or configuration). File-based codes run in a temporary directory.
    Seconds for the tiny molecule with the codes here; a plane-wave code with a large cut-off takes longer.
    """
    name = spec.method if isinstance(spec, Labeler) else str(spec.get("method") if isinstance(spec, dict) else spec)
    try:
        labeler = make_labeler(spec)
    except MlpkitError as exc:
        return f"{name}: {exc}"
    atoms = tiny_molecule(periodic=is_external(labeler)) if atoms is None else atoms
    try:
        with tempfile.TemporaryDirectory(prefix="mlpkit-probe-") as scratch:
            _in_scratch(labeler, scratch).label(atoms)
    except MlpkitError as exc:
        return f"{labeler.method} cannot run: {exc}"
    except Exception as exc:  # a code's own error types vary; its message is what the user needs
        return f"{labeler.method} cannot run: {type(exc).__name__}: {exc}"
    return None


__all__ = ["EXTERNAL_METHODS", "is_external", "probe_method", "tiny_molecule"]
