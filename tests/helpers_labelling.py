"""Test-only calculators and labelers, importable by path (``helpers_labelling:LoggingEMT``) from worker processes.

Not a test module (no ``test_`` prefix): the kill/resume and failure tests plug these into the real code paths.
"""

from __future__ import annotations

import os
import time
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from mlpkit.data import configuration_hash
from mlpkit.errors import LabelFailure
from mlpkit.labelers.base import Labeler


class LoggingEMT(Calculator):
    """EMT, slowed down by ``delay`` seconds, appending the configuration hash of every calculation to ``log``."""

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "forces"]

    def __init__(self, log: str, delay: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.log = log
        self.delay = float(delay)
        self._emt = EMT()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        time.sleep(self.delay)
        work = self.atoms.copy()
        work.calc = self._emt
        self.results = {
            "energy": work.get_potential_energy(),
            "free_energy": work.get_potential_energy(),
            "forces": work.get_forces(),
        }
        # O_APPEND writes of one short line are atomic, so two workers never interleave a line.
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (configuration_hash(self.atoms) + "\n").encode())
        finally:
            os.close(fd)


class FlakyLabeler(Labeler):
    """EMT labels, except for the configurations named in ``behaviour`` (hash -> what goes wrong).

    ``"failure"``: LabelFailure; ``"nan"``: a NaN force; ``"error"``: an unexpected RuntimeError inside the
    code; ``"crash"``: the worker process dies (os._exit).
    """

    name = "flaky"

    def __init__(self, behaviour: dict[str, str]):
        self.behaviour = dict(behaviour)

    @property
    def method(self) -> str:
        return "test:flaky-emt"

    def calculator(self):
        return EMT()

    def _compute(self, atoms: Atoms):
        what = self.behaviour.get(configuration_hash(atoms))
        if what == "failure":
            raise LabelFailure("SCF did not converge (simulated)")
        if what == "error":
            raise RuntimeError("segmentation fault in the reference code (simulated)")
        if what == "crash":
            os._exit(13)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        if what == "nan":
            forces = forces.copy()
            forces[0, 0] = np.nan
        return energy, forces, None


#: what a code that is installed but not set up says (the reason ASE gives for an unconfigured Quantum ESPRESSO)
BROKEN_REASON = (
    "No configuration of 'fakecode'. See "
    "'https://ase-lib.org/ase/calculators/calculators.html#calculator-configuration' and set the pseudopotential "
    "directory, the binary and the MPI launcher."
)


class BrokenCode(Calculator):
    """An external code that is not set up: every calculation raises with :data:`BROKEN_REASON`.

    ``works_every=n``: every n-th calculation in this process works (EMT), to mix failures and labels.
    """

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "forces"]
    calls = 0

    def __init__(self, works_every: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.works_every = int(works_every)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        type(self).calls += 1
        if not self.works_every or type(self).calls % self.works_every:
            raise RuntimeError(BROKEN_REASON)
        work = self.atoms.copy()
        work.calc = EMT()
        energy = work.get_potential_energy()
        self.results = {"energy": energy, "free_energy": energy, "forces": work.get_forces()}


def add_one_by_one(url: str, images: list[Atoms], method: str, start_at: float) -> list[tuple[int, str]]:
    """Runs on a Dask worker: wait until ``start_at`` (so two workers write at once), then add ``images`` one per
    call (one transaction each), label each row it added (EMT) and return [(row id, hash)] of those rows."""
    from mlpkit.data import Dataset, Label

    ds = Dataset(url)
    time.sleep(max(0.0, start_at - time.time()))
    mine = []
    for atoms in images:
        rep = ds.add([atoms], method=method, source=f"worker-{os.getpid()}")
        for row_id in rep.ids:
            work = atoms.copy()
            work.calc = EMT()
            ds.record_label(row_id, Label(energy=work.get_potential_energy(), forces=work.get_forces()))
            mine.append((row_id, configuration_hash(atoms)))
    return mine


def slow_frames(images: list[Atoms], marker: str, after: int):
    """Yield ``images``; after ``after`` of them touch ``marker`` and then hang (to be killed mid-transaction)."""
    for i, atoms in enumerate(images):
        if i == after:
            open(marker, "w").close()
            time.sleep(600)
        yield atoms
