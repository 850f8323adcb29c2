"""Where reference calculations run, as configuration: shared by the project and the active-learning configs."""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class JobqueueSettings(BaseModel):
    """A dask-jobqueue cluster (Slurm, PBS, SGE, LSF) that starts workers as batch jobs."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    kind: Literal["slurm", "pbs", "sge", "lsf", "htcondor", "moab", "oar"] = Field("slurm", description="batch system")
    jobs: int = Field(1, ge=1, description="batch jobs to start (each runs processes workers)")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments of the dask-jobqueue "
        "cluster class, e.g. {queue: normal, cores: 8, memory: 16GB, processes: 4, "
        "walltime: '02:00:00', account: myproject}",
    )

    def cluster_config(self) -> dict:
        """This section as :func:`mlpkit.execution.label_pending`'s ``cluster_config`` (type, jobs, options)."""
        return {"type": self.kind, "jobs": self.jobs, **self.options}


def target_problem(scheduler: str | None, jobqueue: JobqueueSettings | None) -> tuple[str, str] | None:
    """(key, message) when a scheduler address and a jobqueue are both given, the address is malformed, or
    dask-jobqueue is missing; None when the target is usable."""
    if scheduler and jobqueue:
        return "scheduler", "give either scheduler or jobqueue, not both"
    if scheduler and "://" not in scheduler:
        return "scheduler", f"must be an address like tcp://host:8786, got {scheduler!r}"
    if jobqueue is not None and importlib.util.find_spec("dask_jobqueue") is None:
        return "jobqueue", "needs dask-jobqueue: pip install dask-jobqueue"
    return None
