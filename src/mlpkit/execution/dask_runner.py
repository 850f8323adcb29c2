"""Label many configurations in parallel on Dask, writing each result to the store the moment it arrives.

Only this (the main) process writes the store, one transaction per result, in completion order
(``distributed.as_completed``). Killing the run loses at most the calculations in flight; rows still
``pending`` are exactly those not yet finished, so running the same command again continues.

Where the workers come from:

* ``workers=N`` (default 2): a ``LocalCluster`` of N processes with one Dask thread each; BLAS/OpenMP
  threads per worker are set to ``threads // N`` (at least 1; :func:`mlpkit.threads.worker_environment`:
  the usable cores, ``MLPKIT_THREADS`` or ``OMP_NUM_THREADS``) through the worker environment, with passive
  waiting, so N workers never oversubscribe the machine.
* ``scheduler="tcp://host:8786"``: an existing Dask scheduler and whatever workers joined it.
* ``cluster_config={...}`` or a YAML path: a dask-jobqueue cluster (Slurm, PBS, SGE, LSF, ...) started
  with the given keyword arguments and scaled to ``jobs`` batch jobs.
* ``workers=0``: no Dask at all; labels run one after another in this process (debugging, tests).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ase import Atoms

from mlpkit.data.dataset import Dataset, Label
from mlpkit.errors import InputError, LabelFailure
from mlpkit.execution.clusters import load_cluster_config, make_jobqueue_cluster
from mlpkit.labelers.base import Labeler
from mlpkit.threads import worker_environment

#: how many times a configuration is submitted when its worker dies under it
MAX_ATTEMPTS_AFTER_CRASH = 2


@dataclass(frozen=True)
class LabelRunReport:
    """What a labelling run did.

    labelled / failed: rows this run turned ``labelled`` / ``failed``; seconds: wall time of the run;
    duplicates: configurations skipped on adding because the store already had them;
    pending_before: rows waiting for this method when the run started; workers: where it ran;
    first_error: the full reason of this run's first failure (None without failures).
    """

    labelled: int
    failed: int
    seconds: float
    duplicates: int = 0
    pending_before: int = 0
    workers: str = ""
    first_error: str | None = None

    @property
    def all_failed(self) -> bool:
        """Every calculation of this run failed (nothing labelled): a set-up problem more likely than bad data."""
        return self.failed > 0 and self.labelled == 0


#: labelers already built in this (worker) process, by spec, so calculators and caches live across tasks
_WORKER_LABELERS: dict[str, Labeler] = {}


def _label_task(labeler: Labeler, row_id: int, atoms: Atoms) -> tuple[int, Label | None, str | None, float]:
    """Runs on a worker: (row id, label or None, error text or None, seconds). Never raises for a bad label."""
    start = time.perf_counter()
    key = f"{type(labeler).__module__}.{type(labeler).__qualname__}:{sorted(labeler.spec().items())!r}"
    labeler = _WORKER_LABELERS.setdefault(key, labeler)
    try:
        label = labeler.label(atoms)
    except Exception as exc:  # any failure is data about this configuration, not a reason to stop the run
        return row_id, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - start
    return row_id, label, None, label.seconds


# -- clusters -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def open_client(
    workers: int = 2, scheduler: str | None = None, cluster_config: dict | str | os.PathLike | None = None
) -> Iterator[tuple[Any, str]]:
    """A connected ``distributed.Client`` and a one-line description; closes what it started."""
    from distributed import Client, LocalCluster

    if scheduler and cluster_config:
        raise InputError("give either a scheduler address or a cluster configuration, not both")
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        try:
            yield client, f"scheduler {scheduler}"
        except KeyboardInterrupt:
            silence_dask_logs()
            raise
        finally:
            client.close()
        return
    if cluster_config:
        jobs = int(load_cluster_config(cluster_config).get("jobs", 1))
        cluster = make_jobqueue_cluster(cluster_config)
        cluster.scale(jobs=jobs)
        client = Client(cluster)
        try:
            yield client, f"{type(cluster).__name__} with {jobs} job(s)"
        except KeyboardInterrupt:
            silence_dask_logs()
            raise
        finally:
            client.close()
            cluster.close()
        return
    if workers < 1:
        raise InputError("open_client needs workers >= 1 (workers=0 runs without Dask)")
    import dask

    env = worker_environment(workers)
    # worker-saturation 1.0: a worker holds only the task it runs, so a calculation that kills its worker
    # rarely takes a queued task with it; allowed-failures 0: no blind retries by Dask (its default is three
    # fresh workers per crashing calculation); label_pending resubmits such a configuration once itself.
    with (
        dask.config.set({"distributed.scheduler.worker-saturation": 1.0, "distributed.scheduler.allowed-failures": 0}),
        _workers_ignore_sigint(),
    ):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            env=env,
            dashboard_address=None,
            # no dashboard, and the scheduler's small HTTP server on a free port (8787 may be taken by
            # another user's cluster on a shared machine)
            scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"},
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    interrupted = False
    try:
        yield (
            client,
            f"local cluster: {workers} worker process(es) x {env['OMP_NUM_THREADS']} BLAS/OpenMP thread(s)",
        )
    except KeyboardInterrupt:
        interrupted = True
        silence_dask_logs()
        # the workers too: one still inside a calculation logs a failed heartbeat once the scheduler is gone
        with contextlib.suppress(Exception):
            client.run(silence_dask_logs)
        raise
    finally:
        # after Ctrl-C, a close that trips over workers already going away must not replace the interrupt
        with contextlib.suppress(Exception) if interrupted else contextlib.nullcontext():
            client.close()
            cluster.close()


def silence_dask_logs() -> None:
    """No more log records from Dask (its clean-up after Ctrl-C logs cancelled comms as errors)."""
    for name in ("distributed", "dask", "tornado"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


@contextlib.contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Start worker processes with SIGINT ignored (inherited through fork and exec).

    A terminal's Ctrl-C goes to the whole process group; without this each worker prints its own 30-line
    KeyboardInterrupt traceback. This process still gets Ctrl-C and closes the workers itself. A Ctrl-C during
    the cluster's start (a few seconds) is lost; a worker the nanny restarts after a crash takes Python's
    default handling again.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # signal.signal works in the main thread only
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


# -- the run ----------------------------------------------------------------------------------------------


class _Tally:
    """Writes results to the store and counts them; drives the progress bar."""

    def __init__(self, dataset: Dataset, total: int, progress: bool, title: str):
        self.dataset = dataset
        self.labelled = 0
        self.failed = 0
        self.first_error: str | None = None
        self._bar = None
        if progress and total:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[green]{task.fields[ok]} labelled[/] [red]{task.fields[bad]} failed[/]"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._task = self._bar.add_task(title, total=total, ok=0, bad=0)

    def __enter__(self):
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.stop()

    def record(self, row_id: int, label: Label | None, error: str | None, seconds: float) -> None:
        if label is not None:
            try:
                self.dataset.record_label(row_id, label)
                self.labelled += 1
            except LabelFailure as exc:  # NaN or wrong shape: never enters the data
                self._failure(row_id, f"LabelFailure: {exc}", seconds)
        else:
            self._failure(row_id, error or "unknown error", seconds)
        if self._bar is not None:
            self._bar.update(self._task, advance=1, ok=self.labelled, bad=self.failed)

    def _failure(self, row_id: int, error: str, seconds: float) -> None:
        self.dataset.record_failure(row_id, error, seconds)
        self.failed += 1
        if self.first_error is None:
            self.first_error = error


def label_pending(
    dataset: Dataset,
    labeler: Labeler,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    cluster_config: dict | str | os.PathLike | None = None,
    progress: bool = True,
) -> LabelRunReport:
    """Label every ``pending`` row of ``labeler.method`` in ``dataset``; see the module docstring for where.

    Failures of single labels (SCF not converged, NaN, a crashed worker) are recorded as ``failed`` with
    the reason and the run goes on. Returns counts for this run.
    """
    start = time.perf_counter()
    pending = dataset.pending(labeler.method)
    if not pending:
        return LabelRunReport(0, 0, time.perf_counter() - start, workers="nothing to do")
    title = f"labelling {labeler.method}"
    if workers == 0 and not scheduler and not cluster_config:
        with _Tally(dataset, len(pending), progress, title) as tally:
            for row_id, atoms in pending:
                tally.record(*_label_task(labeler, row_id, atoms))
        return LabelRunReport(
            tally.labelled,
            tally.failed,
            time.perf_counter() - start,
            pending_before=len(pending),
            workers="in-process (no Dask)",
            first_error=tally.first_error,
        )
    if workers < 0:
        raise InputError(f"workers must be >= 0, got {workers}")

    from distributed import KilledWorker, as_completed

    with open_client(workers, scheduler, cluster_config) as (client, where):
        # The labeler goes with every task (it is small); it is not scattered, because scattered data dies
        # with the workers holding it, and workers may die here. Each worker keeps one instance per spec.
        atoms_of = dict(pending)
        futures: dict = {}
        attempts: dict[int, int] = {}

        def submit(row_id: int):
            attempts[row_id] = attempts.get(row_id, 0) + 1
            key = f"label-{row_id}-{attempts[row_id]}-{os.urandom(4).hex()}"
            fut = client.submit(_label_task, labeler, row_id, atoms_of[row_id], pure=False, key=key)
            futures[fut] = row_id
            return fut

        queue = as_completed([submit(row_id) for row_id, _ in pending])
        with _Tally(dataset, len(pending), progress, title) as tally:
            try:
                for fut in queue:
                    row_id = futures.pop(fut)
                    try:
                        result = fut.result()
                    except KilledWorker as exc:
                        # A worker died while this task was on it: either this calculation crashed it, or it
                        # was a bystander of another one's crash. One more try on its own tells them apart.
                        if attempts[row_id] < MAX_ATTEMPTS_AFTER_CRASH:
                            queue.add(submit(row_id))
                        else:
                            tally.record(
                                row_id,
                                None,
                                f"worker process died while labelling this configuration "
                                f"{attempts[row_id]} times (a crash or out of memory in the reference "
                                f"code): KilledWorker: {exc}",
                                0.0,
                            )
                    except Exception as exc:  # the task could not run at all (unpicklable input, ...)
                        tally.record(row_id, None, f"{type(exc).__name__}: {exc}", 0.0)
                    else:
                        tally.record(*result)
                    fut.release()
            except BaseException:
                client.cancel(list(futures))
                raise
    return LabelRunReport(
        tally.labelled,
        tally.failed,
        time.perf_counter() - start,
        pending_before=len(pending),
        workers=where,
        first_error=tally.first_error,
    )


def label_configurations(
    images: Sequence[Atoms],
    labeler: Labeler,
    dataset: Dataset,
    *,
    source: str | None,
    workers: int = 2,
    scheduler: str | None = None,
    cluster_config: dict | str | os.PathLike | None = None,
    progress: bool = True,
    default_source: str = "input",
) -> LabelRunReport:
    """Check ``images`` against the method, add them as ``pending`` (duplicates skipped) and label them.

    Every image is checked (elements, overlapping atoms, periodicity) before anything is written, so bad
    input leaves the store as it was. Rows of the same method still pending from an earlier, interrupted
    run are labelled too. ``source=None`` takes each image's ``info["source"]`` (``default_source`` where
    it has none).
    """
    images = list(images)
    for i, atoms in enumerate(images):
        try:
            labeler.check(atoms)
        except InputError as exc:
            raise type(exc)(f"configuration {i}: {exc}") from exc
    groups: dict[str, list[Atoms]] = {}
    for atoms in images:
        groups.setdefault(source or str(atoms.info.get("source") or default_source), []).append(atoms)
    duplicates = sum(
        dataset.add(group, method=labeler.method, source=name).duplicates for name, group in groups.items()
    )
    report = label_pending(
        dataset, labeler, workers=workers, scheduler=scheduler, cluster_config=cluster_config, progress=progress
    )
    return LabelRunReport(
        report.labelled,
        report.failed,
        report.seconds,
        duplicates=duplicates,
        pending_before=report.pending_before,
        workers=report.workers,
        first_error=report.first_error,
    )
