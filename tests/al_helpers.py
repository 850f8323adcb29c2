"""Test-only pieces for the active-learning tests (importable by subprocesses through PYTHONPATH=tests).

``LoggingGFN2``: a real GFN2-xTB calculator (tblite) that appends the configuration hash of every finished
calculation to a log file, so a test can count reference calculations across killed and resumed runs.
"""

from __future__ import annotations

import os
import time

from ase.calculators.calculator import Calculator, all_changes


class LoggingGFN2(Calculator):
    """GFN2-xTB energies/forces; logs one line (configuration hash) per finished calculation.

    log:   path of the log file (appended, flushed and fsynced per line)
    delay: seconds slept before each calculation, so a test can kill a run in the middle of one
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, log: str, delay: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.log = log
        self.delay = float(delay)
        self._calc = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        from tblite.ase import TBLite

        from mlpkit.data.hashing import configuration_hash

        if self.delay:
            time.sleep(self.delay)
        a = self.atoms.copy()
        a.calc = TBLite(method="GFN2-xTB", verbosity=0)
        energy = a.get_potential_energy()
        forces = a.get_forces()
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}
        with open(self.log, "a") as fh:
            fh.write(configuration_hash(self.atoms) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def tiny_config(log: str, delay: float = 0.0, **overrides) -> dict:
    """A complete active-learning config small enough for a unit test (water, GFN2-xTB labels)."""
    cfg = {
        "name": "tiny",
        "structure": "H2O",
        "reference": {
            "method": "ase",
            "calculator": "al_helpers:LoggingGFN2",
            "parameters": {"log": log, "delay": delay},
            "level_of_theory": "logged-GFN2",
            "stress": False,
        },
        "driver": {"method": "gfn2"},
        "seed": 0,
        "max_iterations": 2,
        "label_budget": 20,
        "initial": {"n": 8, "equilibration": 30, "steps_between": 30},
        "explore": {"temperatures": [400], "walkers": 2, "steps": 60, "interval": 5, "timestep": 1.0},
        "select": {"top_k": 3, "valid_fraction": 0.25},
        "committee": {
            "n_members": 2,
            "hyperparameters": {"hidden": [16, 16], "n_radial": 8, "n_angular": 2},
            "fit": {"epochs": 100, "patience": 100, "batch_size": 2, "learning_rate": 0.01},
        },
        "stop": {"force_mae": 0.01},
        "test": {"temperatures": [400], "n_per_temperature": 4, "equilibration": 30, "steps_between": 30},
        "baseline": {"enabled": True, "label_factor": 1.3, "pool_factor": 2.0},
        "execution": {"workers": 0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg
