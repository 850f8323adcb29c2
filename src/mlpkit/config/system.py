"""The sections that say what is computed and where: project (name, run directory, seed), system (the
structure), reference (the labelling method) and execution (where labels are computed)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from mlpkit.config.base import _check_method, _Section
from mlpkit.errors import InputError
from mlpkit.execution.settings import JobqueueSettings as JobqueueSection
from mlpkit.execution.settings import target_problem


class ProjectSection(_Section):
    """Name, where results go, and the seed every random choice derives from."""

    name: str = Field("mlpkit-project", min_length=1, description="a name for the project (report title)")
    run_dir: str = Field(
        "run",
        min_length=1,
        description="directory for every result (dataset, models, "
        "trajectories, report, state file); relative paths are relative to this file's directory",
    )
    seed: int = Field(0, ge=0, description="seed of every random choice (sampling, splits, training, MD)")


class SystemSection(_Section):
    """The structure to build a potential for."""

    structure: str = Field(
        "H2O",
        min_length=1,
        description="an ASE molecule name (H2O, CH3CH2OH, ...; see "
        "ase.collections.g2), a periodic box of molecules NAME-box:N or NAME-box:N@DENSITY (water-box:32 = 32 "
        "H2O at 1.0 g/cm³; CH3OH-box:20@0.79, density in g/cm³; placed with project.seed), or a structure file "
        "ASE reads (xyz, extxyz, "
        "cif, POSCAR, ...; periodic cells keep their lattice); relative paths are relative to this file's directory",
    )
    index: int = Field(0, description="which frame of a multi-frame structure file to start from")

    @field_validator("structure")
    @classmethod
    def _structure_exists(cls, v: str, info: ValidationInfo) -> str:
        base = Path((info.context or {}).get("base_dir", "."))
        path = Path(v).expanduser()
        path = path if path.is_absolute() else base / path
        if path.exists():
            return v
        from mlpkit.data.boxes import is_box_spec, parse_box_spec

        if is_box_spec(v):
            try:
                parse_box_spec(v)
            except InputError as exc:
                raise ValueError(str(exc)) from None
            return v
        if any(sep in v for sep in ("/", "\\")) or Path(v).suffix:
            raise ValueError(f"file {path} does not exist (relative paths are relative to the configuration file)")
        from ase.collections import g2

        if v not in g2.names:
            close = difflib.get_close_matches(v, g2.names, n=3)
            raise ValueError(
                f"{v!r} is neither a file nor an ASE molecule name"
                + (f"; did you mean {' or '.join(close)}?" if close else "")
                + " (molecule names: ase.collections.g2.names)"
            )
        return v

    vacuum: float = Field(
        5.0,
        gt=0,
        description="Å of vacuum around a molecule given by name (box for the "
        "source's 'molecule in a box' protocol; non-periodic)",
    )


class ReferenceSection(_Section):
    """The reference method that labels configurations (energies, forces, stress)."""

    method: str = Field(
        "pyscf",
        description="pyscf (DFT, default), gfn2 (GFN2-xTB via tblite), gpaw, ase (any "
        "ASE calculator), emt (toy, tests only); see docs/reference-methods.md",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword options of the method (pyscf: xc, "
        "basis, charge, spin, conv_tol, ...; ase: calculator, parameters, "
        "level_of_theory); missing ones take the method's defaults, written out here",
    )

    @field_validator("method")
    @classmethod
    def _method_installed(cls, v: str) -> str:
        _check_method(v, None, what="reference method")
        return v

    @model_validator(mode="after")
    def _options_work(self) -> ReferenceSection:
        try:
            spec = _check_method(self.method, self.options, what="reference method")
        except ValueError as exc:
            raise ValueError(f"@options {exc}") from None
        self.options = {k: v for k, v in spec.items() if k != "method"}
        return self

    def labeler(self):
        """The :class:`mlpkit.labelers.base.Labeler` this section describes."""
        from mlpkit.labelers import make_labeler

        return make_labeler(self.method, **self.options)


class ExecutionSection(_Section):
    """Where reference calculations run (Dask)."""

    workers: int = Field(
        2,
        ge=0,
        description="local Dask worker processes (one label each at a time); BLAS/OpenMP "
        "threads per worker are set so workers x threads = cores; 0 = no Dask, label in this process",
    )
    scheduler: str | None = Field(
        None, description="address of a running Dask scheduler (tcp://host:8786); overrides workers"
    )
    jobqueue: JobqueueSection | None = Field(
        None, description="start workers as batch jobs (Slurm/PBS/...) via dask-jobqueue; overrides workers"
    )
    train_processes: int | None = Field(
        None,
        ge=1,
        description="processes on this machine that fit committee members side by side, each with its share of "
        "the threads (None: as many as local Dask workers when labels run here, 1 with a scheduler or jobqueue)",
    )

    @model_validator(mode="after")
    def _one_target(self) -> ExecutionSection:
        problem = target_problem(self.scheduler, self.jobqueue)
        if problem:
            raise ValueError(f"@{problem[0]} {problem[1]}")
        return self

    def fit_processes(self) -> int:
        """Processes that fit committee members side by side (see ``train_processes``)."""
        if self.train_processes is not None:
            return self.train_processes
        if self.scheduler is not None or self.jobqueue is not None:
            return 1
        return max(self.workers, 1)

    def where(self) -> dict:
        """Keyword arguments of :func:`mlpkit.execution.label_pending` for where the labels run."""
        return {
            "workers": self.workers,
            "scheduler": self.scheduler,
            "cluster_config": None if self.jobqueue is None else self.jobqueue.cluster_config(),
        }
