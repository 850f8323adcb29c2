"""mlpkit's thread layout: how many BLAS/OpenMP/torch threads a process uses, and how idle threads wait.

The ``mlpkit`` command calls :func:`configure_threads` before it imports numpy, torch or PySCF (their thread
pools read the environment once, at import); library users call it first thing::

    import mlpkit.threads
    mlpkit.threads.configure_threads()     # before importing numpy/torch where possible
    import mlpkit

Why: OpenMP runtimes (tblite, PySCF, torch) default to one busy-waiting thread per core of the *machine*. On a
shared or containerised machine the process may own fewer cores than that, and on a busy machine a thread
waiting at a barrier for a descheduled sibling spins on a core someone else needs; a 50-step GFN2 MD went from
0.7 s to 15 s with one other CPU-bound process running (docs/benchmarks/threads.md).

The layout:

* thread count: ``MLPKIT_THREADS`` if set, else the user's ``OMP_NUM_THREADS``, else :func:`usable_cores`
  (CPU affinity and the cgroup CPU quota, never ``os.cpu_count()``);
* every thread-count variable (:data:`THREAD_VARIABLES`) the user did not set gets that count
  (``MLPKIT_THREADS`` sets them all);
* idle OpenMP threads sleep instead of spinning (:data:`PASSIVE_WAITING`; a user's own values are kept);
* no nested parallel regions (``OMP_MAX_ACTIVE_LEVELS=1``); Dask workers each get an equal share of the
  count (:func:`worker_environment`), so workers x threads never exceeds the usable cores.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

#: thread-count variables of the common BLAS/OpenMP runtimes (and numba's)
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)

#: idle OpenMP threads sleep at once (GNU: OMP_WAIT_POLICY/GOMP_SPINCOUNT; Intel/LLVM: KMP_BLOCKTIME ms), and
#: parallel regions do not nest (a threaded BLAS call inside an OpenMP loop would square the thread count)
PASSIVE_WAITING = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "GOMP_SPINCOUNT": "0",
    "KMP_BLOCKTIME": "0",
    "OMP_MAX_ACTIVE_LEVELS": "1",
}

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_paths(proc_cgroup: str | None) -> tuple[str | None, str | None]:
    """(cgroup v2 path, cgroup v1 cpu-controller path) of this process from /proc/self/cgroup's text."""
    v2 = v1 = None
    for line in (proc_cgroup or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _ancestors(root: Path, sub: str | None) -> list[Path]:
    """``root/sub`` and each of its parents up to ``root`` (a quota set on a parent limits its children)."""
    dirs = [root]
    path = root
    for part in (sub or "/").strip("/").split("/"):
        if part:
            path = path / part
            dirs.append(path)
    return dirs[::-1]


def cgroup_cpu_limit(root: Path | str = CGROUP_ROOT, proc_cgroup: str | None = None) -> float | None:
    """CPU cores the cgroup quota allows (may be fractional), or ``None`` when no quota is set.

    cgroup v2: ``cpu.max`` ("QUOTA PERIOD" or "max PERIOD") in the process's group and its parents;
    cgroup v1: ``cpu/cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: none). The smallest limit found
    wins. ``proc_cgroup`` is the text of /proc/self/cgroup (read when not given).
    """
    root = Path(root)
    if proc_cgroup is None:
        proc_cgroup = _read(Path("/proc/self/cgroup")) or ""
    v2, v1 = _cgroup_paths(proc_cgroup)
    limits: list[float] = []
    for d in _ancestors(root, v2):
        text = _read(d / "cpu.max")
        if text:
            quota, _, period = text.partition(" ")
            if quota != "max":
                try:
                    if float(period or 100000) > 0 and float(quota) > 0:
                        limits.append(float(quota) / float(period or 100000))
                except ValueError:
                    pass
    for base in (root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"):
        for d in _ancestors(base, v1):
            quota, period = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
            try:
                if quota and period and float(quota) > 0 and float(period) > 0:
                    limits.append(float(quota) / float(period))
            except ValueError:
                pass
    return min(limits) if limits else None


def affinity_cores() -> int:
    """CPUs this process may run on (taskset, cpuset cgroup); ``os.cpu_count()`` only where affinity is unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows: no affinity API
        return os.cpu_count() or 1


def usable_cores(root: Path | str = CGROUP_ROOT, proc_cgroup: str | None = None) -> int:
    """Cores this process can really use: its CPU affinity, capped by the cgroup CPU quota (at least 1).

    A fractional quota is rounded down (1.5 cores -> 1 thread), because a second thread on half a core is
    throttled at every barrier.
    """
    cores = affinity_cores()
    limit = cgroup_cpu_limit(root, proc_cgroup)
    if limit is not None:
        cores = min(cores, max(1, math.floor(limit)))
    return max(1, cores)


def _positive_int(environ, name: str) -> int | None:
    value = environ.get(name, "").strip()
    if not value:
        return None
    try:
        n = int(value.split(",")[0])  # OMP_NUM_THREADS may be a per-level list "4,1"
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return n


def thread_count(environ: MutableMapping[str, str] | None = None, cores: int | None = None) -> tuple[int, str]:
    """(threads, where the number came from): ``MLPKIT_THREADS``, else ``OMP_NUM_THREADS``, else usable cores.

    Raises ``ValueError`` for a set but non-positive or non-integer value.
    """
    environ = os.environ if environ is None else environ
    for name in ("MLPKIT_THREADS", "OMP_NUM_THREADS"):
        n = _positive_int(environ, name)
        if n is not None:
            return n, name
    return (cores or usable_cores()), "usable cores"


def thread_environment(threads: int, environ: MutableMapping[str, str] | None = None, force: bool = False) -> dict:
    """The variables to set for ``threads`` threads: counts and passive waiting not already in ``environ``.

    ``force=True`` replaces the thread counts the user set too (``MLPKIT_THREADS`` and Dask workers do this);
    the waiting variables are never replaced.
    """
    environ = os.environ if environ is None else environ
    env = {v: str(threads) for v in THREAD_VARIABLES if force or v not in environ}
    env.update({k: v for k, v in PASSIVE_WAITING.items() if k not in environ})
    return env


def configure_threads(environ: MutableMapping[str, str] | None = None) -> int:
    """Set this process's thread layout (module docstring) and return its thread count.

    Call it before numpy, torch or PySCF are imported: their thread pools read the environment at import.
    torch and numba, if already imported, are set directly (``torch.set_num_threads``, ``numba.set_num_threads``).
    Calling it again is harmless. ``environ`` defaults to ``os.environ`` (tests pass a dict).
    """
    environ = os.environ if environ is None else environ
    threads, source = thread_count(environ)
    env = thread_environment(threads, environ, force=source == "MLPKIT_THREADS")
    if environ is os.environ and "numba" in sys.modules:
        # numba refuses a changed NUMBA_NUM_THREADS once its pool runs; set_num_threads below does the job
        env.pop("NUMBA_NUM_THREADS", None)
    environ.update(env)
    if environ is os.environ:
        if "torch" in sys.modules:
            import torch

            torch.set_num_threads(threads)
        if "numba" in sys.modules:
            import numba

            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return threads


def worker_environment(workers: int, cores: int | None = None) -> dict[str, str]:
    """Environment for each of ``workers`` processes: an equal share (at least 1) of the thread budget.

    The budget is ``cores`` if given, else :func:`thread_count` (``MLPKIT_THREADS``, ``OMP_NUM_THREADS`` or the
    usable cores), so ``workers x threads`` stays within it; idle threads wait passively.
    """
    budget = cores or thread_count()[0]
    threads = max(1, budget // max(1, workers))
    return {**dict.fromkeys(THREAD_VARIABLES, str(threads)), **PASSIVE_WAITING}


#: backwards-compatible name (mlpkit.execution.available_cores)
available_cores = usable_cores

__all__ = [
    "PASSIVE_WAITING",
    "THREAD_VARIABLES",
    "affinity_cores",
    "available_cores",
    "cgroup_cpu_limit",
    "configure_threads",
    "thread_count",
    "thread_environment",
    "usable_cores",
    "worker_environment",
]
