"""Worker processes on this machine for independent CPU-bound jobs (committee fits, driver MD chains): *spawned*,
not forked (torch's OpenMP pool hangs in a forked child of a multi-threaded parent, docs/benchmarks/md-speed.md),
each with its share of the thread budget in its environment before it imports numpy or torch, each ending with its
parent, and started without the malloc settings Dask leaves in this process's environment."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

#: seconds between a worker's checks that its parent is still alive
PARENT_POLL_SECONDS = 1.0

#: variables that must not reach a fitting worker. Dask's Nanny writes its ``distributed.nanny.pre-spawn-environ``
#: into *this* process's environment when it starts labelling workers, MALLOC_TRIM_THRESHOLD_=65536 among them; glibc
#: reads it at a process's start, and any such setting turns off its dynamic mmap threshold, so every tensor above
#: 128 KB is mmap'd, faulted in page by page and unmapped again: a BPNN member fitting on liquid-water boxes spent as
#: much CPU in the kernel as in user space (docs/benchmarks/liquid-water.md, "Fitting workers and Dask's malloc
#: setting")
NOT_FOR_WORKERS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


@contextlib.contextmanager
def worker_spawn_environment() -> Iterator[None]:
    """While workers are spawned (the pool starts them on submit): this process's environment without
    :data:`NOT_FOR_WORKERS`, restored afterwards."""
    saved = {k: os.environ.pop(k) for k in NOT_FOR_WORKERS if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def exit_with_parent(parent: int) -> None:
    """In a worker: end this process within ``PARENT_POLL_SECONDS`` of its parent's death.

    A parent killed outright (SIGKILL, the OOM killer, a batch system's hard limit) runs no clean-up, and a spawned
    worker in the middle of a fit reads nothing from the pool's pipes until that fit ends: without this it would
    train on, orphaned, for as long as the fit takes. Linux re-parents an orphan, so its parent pid changes.
    """
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="mlpkit-exit-with-parent", daemon=True).start()


def init_worker(env: dict[str, str], parent: int | None = None) -> None:
    """Runs first in each spawned worker: its share of threads, before numpy/torch are imported by the job."""
    os.environ.update(env)
    if parent is not None:
        exit_with_parent(parent)
    import mlpkit.threads

    mlpkit.threads.configure_threads()


def spawn_pool(processes: int) -> ProcessPoolExecutor:
    """A pool of ``processes`` spawned workers, each with its share of the thread budget, each ending with this
    process (:func:`exit_with_parent`)."""
    import multiprocessing

    from mlpkit.threads import worker_environment

    env = worker_environment(processes)
    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        max_workers=processes, mp_context=ctx, initializer=init_worker, initargs=(env, os.getpid())
    )


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now (Ctrl-C, SIGTERM, a failed fit): ``shutdown(wait=True)`` would wait for every
    running fit to finish. Python < 3.14 has no public ``terminate_workers``, hence ``_processes``."""
    # taken before shutdown(), which sets _processes to None
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
