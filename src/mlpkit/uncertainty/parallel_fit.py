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

import tempfile
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ase import Atoms

from mlpkit.errors import InputError
from mlpkit.execution.local_pool import spawn_pool, stop_workers, worker_spawn_environment
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
            stop_workers(pool)
            raise
        pool.shutdown(wait=True)
        return [(load_potential(out), h) for out, h in zip(outs, histories, strict=True)]
