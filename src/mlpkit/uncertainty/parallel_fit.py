"""Fit committee members side by side in worker processes on this machine.

A committee's members are independent fits: on a machine with C cores, fitting them in P processes of C/P threads
each beats one process fitting them one after another whenever one fit cannot use all cores — which is the case
for the small networks of an active-learning loop (a 16x16 BPNN on a water molecule keeps one core busy with
per-batch overhead; a second torch thread buys nothing). Measured on the water example: see
docs/benchmarks/pipeline.md.

Each worker process is *spawned* (not forked: torch's OpenMP pool hangs in a forked child of a multi-threaded
parent, docs/benchmarks/md-speed.md) with its share of the thread budget in the environment before it imports
torch. It builds its member from the family, hyperparameters and data (or loads the warm-start member from a model
directory), fits it, and saves it to a model directory; the parent loads that directory with the family's
``load`` (``torch.load(..., weights_only=True)``; the save/load round trip is bit-exact by the potential contract).
Fitting is seeded and single-threaded per member, so the committee is the same one a sequential fit gives
(tests/test_parallel_fit.py).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ase import Atoms

from mlpkit.errors import InputError
from mlpkit.potentials.base import Potential
from mlpkit.training.history import FitHistory


@dataclass
class MemberJob:
    """One member's fit: what to build (``family``, ``hyperparameters`` on ``train``) or where to load it from
    (``warm_dir``), what to fit it on (``sub``, ``valid``) and how (``fit``: fit settings and run-time options)."""

    family: str
    hyperparameters: dict[str, Any]
    train: list[Atoms]
    sub: list[Atoms]
    valid: list[Atoms] | None
    fit: dict[str, Any] = field(default_factory=dict)
    warm_dir: str | None = None


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


def _exit_with_parent(parent: int) -> None:
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


def _init_worker(env: dict[str, str], parent: int | None = None) -> None:
    """Runs first in each spawned worker: its share of threads, before numpy/torch are imported by the job."""
    os.environ.update(env)
    if parent is not None:
        _exit_with_parent(parent)
    import mlpkit.threads

    mlpkit.threads.configure_threads()


def spawn_pool(processes: int) -> ProcessPoolExecutor:
    """A pool of ``processes`` spawned workers, each with its share of the thread budget, each ending with this
    process (:func:`_exit_with_parent`)."""
    import multiprocessing

    from mlpkit.threads import worker_environment

    env = worker_environment(processes)
    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        max_workers=processes, mp_context=ctx, initializer=_init_worker, initargs=(env, os.getpid())
    )


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now (Ctrl-C, SIGTERM, a failed fit): ``shutdown(wait=True)`` would wait for every
    running fit to finish. Python < 3.14 has no public ``terminate_workers``, hence ``_processes``."""
    # taken before shutdown(), which sets _processes to None
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()


def _fit_one(job: MemberJob, out_dir: str) -> FitHistory:
    from mlpkit.potentials.registry import create_potential, load_potential

    if job.warm_dir is not None:
        member = load_potential(job.warm_dir)
    else:
        member = create_potential(job.family, job.train, **job.hyperparameters)
    history = member.fit(job.sub, job.valid, **job.fit)
    member.save(out_dir)
    return history


def fit_in_processes(jobs: Sequence[MemberJob], processes: int, on_done=None) -> list[tuple[Potential, FitHistory]]:
    """Fit every job in up to ``processes`` spawned worker processes; (fitted member, history) in job order.

    ``on_done(i, history)`` is called in the parent as each member finishes (progress for the user). A failure in
    any fit is raised here, with the worker's exception.
    """
    from mlpkit.potentials.registry import load_potential

    processes = max(1, min(processes, len(jobs)))
    with tempfile.TemporaryDirectory(prefix="mlpkit-members-") as tmp:
        outs = [str(Path(tmp) / f"member-{i:02d}") for i in range(len(jobs))]
        pool = spawn_pool(processes)
        try:
            with worker_spawn_environment():
                futures = [pool.submit(_fit_one, job, out) for job, out in zip(jobs, outs, strict=True)]
            histories: list[FitHistory] = []
            for i, fut in enumerate(futures):
                try:
                    histories.append(fut.result())
                except BrokenProcessPool:
                    raise InputError(
                        "a worker process fitting committee members died. If you called this from a script, "
                        'guard its top level with `if __name__ == "__main__":` (spawned workers import the '
                        "main module); otherwise it ran out of memory: use fewer processes (processes=1, or "
                        "execution.train_processes: 1)"
                    ) from None
                if on_done is not None:
                    on_done(i, histories[-1])
        except BaseException:
            _stop_workers(pool)
            raise
        pool.shutdown(wait=True)
        return [(load_potential(out), h) for out, h in zip(outs, histories, strict=True)]
