"""What every stage of ``mlpkit run`` needs: the configuration, the run directory, its state, and objects built
once (labeler, dataset store, start structure, trained potentials); with small helpers stages share."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlpkit.config.project import ProjectConfig
from mlpkit.workflows.engine import WorkflowState

STATE_FILE = "pipeline-state.json"
#: configs/START_FILE: a periodic start after the sample stage's relaxation and NVT equilibration
START_FILE = "start.extxyz"


@dataclass
class ProjectRun:
    """Everything a stage needs: the configuration, paths, and lazily built objects."""

    cfg: ProjectConfig
    state: WorkflowState
    progress: bool = True
    console: Any = None
    _cache: dict = field(default_factory=dict)

    # paths
    @property
    def run_dir(self) -> Path:
        return self.cfg.run_dir

    def path(self, *parts: str) -> Path:
        return self.run_dir.joinpath(*parts)

    # objects
    @property
    def labeler(self):
        if "labeler" not in self._cache:
            self._cache["labeler"] = self.cfg.reference.labeler()
        return self._cache["labeler"]

    @property
    def dataset(self):
        if "dataset" not in self._cache:
            from mlpkit.data import Dataset

            self._cache["dataset"] = Dataset(self.cfg.database_url)
        return self._cache["dataset"]

    @property
    def start(self):
        """The structure MD starts from: a periodic box as the sample stage equilibrated it (``configs/start.extxyz``)
        once that exists, else the configured structure."""
        if "start" not in self._cache:
            equilibrated = self.path("configs", START_FILE)
            if equilibrated.is_file():
                from ase.io import read

                self._cache["start"] = read(equilibrated, index=0)
            else:
                self._cache["start"] = self.cfg.structure_atoms()
        return self._cache["start"].copy()

    def labelled(self, split: str):
        return self.dataset.to_atoms(method=self.labeler.method, split=split)

    def potential(self, which: str):
        from mlpkit.potentials.registry import load_potential

        key = f"model-{which}"
        if key not in self._cache:
            self._cache[key] = load_potential(self.path("models", which))
        return self._cache[key]

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(f"    {text}", highlight=False)


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def relaxed(atoms, calculator, fmax: float = 1e-3, steps: int = 500):
    """A copy of ``atoms`` relaxed with ``calculator`` (BFGS to ``fmax`` eV/Å)."""
    from ase.optimize import BFGS

    a = atoms.copy()
    a.calc = calculator
    BFGS(a, logfile=None).run(fmax=fmax, steps=steps)
    a.calc = None
    return a


def fit_settings(run: ProjectRun) -> dict:
    """The model section's fit settings as keyword arguments of the training."""
    return dict(run.cfg.model.fit)
