"""Batch clusters for labelling: a dask-jobqueue cluster (Slurm, PBS, SGE, LSF, ...) from a configuration.

Used by :func:`mlpkit.execution.dask_runner.open_client` for ``cluster_config``.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlpkit.errors import InputError, MissingDependencyError
from mlpkit.threads import PASSIVE_WAITING, THREAD_VARIABLES

#: dask-jobqueue cluster classes by the ``type`` of a cluster configuration
JOBQUEUE_TYPES = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "htcondor": "HTCondorCluster",
    "moab": "MoabCluster",
    "oar": "OARCluster",
}


def load_cluster_config(config: dict | str | os.PathLike) -> dict:
    """A dask-jobqueue configuration as a dict: from a dict, or a YAML file path."""
    if isinstance(config, dict):
        return dict(config)
    path = Path(config)
    if not path.is_file():
        raise InputError(f"cluster configuration {path} does not exist")
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"cannot parse cluster configuration {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"cluster configuration {path} must be a mapping (type: slurm, cores: ..., ...)")
    return data


def make_jobqueue_cluster(config: dict | str | os.PathLike):
    """Build (but do not scale) a dask-jobqueue cluster from a configuration.

    Keys: ``type`` (slurm, pbs, sge, lsf, htcondor, moab, oar), ``jobs`` (batch jobs to start; used by
    :func:`open_client`), everything else passed to the dask-jobqueue class (``cores``, ``processes``,
    ``memory``, ``walltime``, ``queue``, ``account``, ``job_script_prologue``, ``job_extra_directives``...).
    Unless the prologue already sets ``OMP_NUM_THREADS``, a line giving each worker process
    ``cores // processes`` threads is added.
    """
    cfg = load_cluster_config(config)
    kind = str(cfg.pop("type", "slurm")).lower()
    cfg.pop("jobs", None)
    if kind not in JOBQUEUE_TYPES:
        raise InputError(f"cluster type must be one of {sorted(JOBQUEUE_TYPES)}, not {kind!r}")
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise MissingDependencyError("dask-jobqueue is needed for batch clusters: pip install dask-jobqueue") from exc
    cores = int(cfg.get("cores", 1))
    processes = int(cfg.get("processes", cores))
    prologue = list(cfg.get("job_script_prologue", []) or [])
    if not any("OMP_NUM_THREADS" in line for line in prologue):
        threads = max(1, cores // max(1, processes))
        prologue += [f"export {v}={threads}" for v in THREAD_VARIABLES[:3]]
        prologue += [f"export {k}={v}" for k, v in PASSIVE_WAITING.items()]
    cfg["job_script_prologue"] = prologue
    cfg.setdefault("processes", processes)
    cfg.setdefault("scheduler_options", {"dashboard_address": None})
    cls = getattr(dask_jobqueue, JOBQUEUE_TYPES[kind])
    try:
        return cls(**cfg)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad {kind} cluster configuration: {exc}") from exc


__all__ = ["JOBQUEUE_TYPES", "load_cluster_config", "make_jobqueue_cluster"]
