"""Running many independent reference calculations: Dask (local, a scheduler address, or a batch cluster)."""

from mlpkit.execution.clusters import load_cluster_config, make_jobqueue_cluster
from mlpkit.execution.dask_runner import (
    LabelRunReport,
    label_configurations,
    label_pending,
    open_client,
    worker_environment,
)
from mlpkit.threads import available_cores

__all__ = [
    "LabelRunReport",
    "available_cores",
    "label_configurations",
    "label_pending",
    "load_cluster_config",
    "make_jobqueue_cluster",
    "open_client",
    "worker_environment",
]
