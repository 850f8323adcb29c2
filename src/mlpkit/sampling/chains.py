"""Independent MD runs of a sampling driver (the initial-set MD, the test runs at each temperature), side by side.

Driving MD with the reference method itself (GFN2-xTB, DFT) is most of a periodic project's sampling cost, and the
runs after the equilibration are independent: each starts from the same structure with its own seed. A reference
code on two threads is far from twice as fast on a small box (GFN2-xTB on 48 atoms: 1.2x), so on a machine with
C cores C single-threaded runs side by side finish sooner than the same runs one after another on C threads. Each
run goes to a spawned worker process (:mod:`mlpkit.execution.local_pool`) with its share of the threads.

The frames are the ones a run in this process gives with the same seed, up to the rounding of the driver's own
threaded sums: a reference code on one thread adds in another order than on two, and MD amplifies any difference
(tests/test_sampling_chains.py compares a deterministic driver bit for bit).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ase import Atoms

from mlpkit.errors import InputError


def _run_one(start: Atoms, driver, md: dict[str, Any]) -> list[Atoms]:
    from mlpkit.sampling.md import md_snapshots

    return md_snapshots(start, driver, **md)


def picklable(driver) -> bool:
    """Whether ``driver`` can be sent to a worker process (labelers are; an ASE calculator holding a live
    connection or an open file may not be)."""
    try:
        pickle.dumps(driver)
    except Exception:
        return False
    return True


def run_chains(
    start: Atoms,
    driver,
    chains: Sequence[dict[str, Any]],
    *,
    processes: int = 1,
    progress: bool = False,
    on_done: Callable[[int, list[Atoms]], None] | None = None,
) -> list[list[Atoms]]:
    """:func:`mlpkit.sampling.md.md_snapshots` ``(start, driver, **md)`` for every ``md`` in ``chains``; the frames of
    each, in the order of ``chains``.

    processes: up to this many chains side by side in spawned worker processes (each with its share of the thread
               budget); 1, a single chain, or a driver that cannot be pickled: one after another in this process
    progress:  progress bars (in this process only: workers run without)
    on_done:   ``on_done(i, frames)`` in this process as chain ``i`` finishes
    """
    processes = max(1, min(int(processes), len(chains)))
    if processes == 1 or not picklable(driver):
        out = []
        for i, md in enumerate(chains):
            out.append(_run_one(start, driver, {**md, "progress": progress}))
            if on_done is not None:
                on_done(i, out[-1])
        return out
    from concurrent.futures import FIRST_COMPLETED, wait

    from mlpkit.execution.local_pool import spawn_pool, stop_workers, worker_spawn_environment

    pool = spawn_pool(processes)
    try:
        with worker_spawn_environment():
            futures = [pool.submit(_run_one, start, driver, {**md, "progress": False}) for md in chains]
        index = {f: i for i, f in enumerate(futures)}
        results: dict[int, list[Atoms]] = {}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=index.__getitem__):
                try:
                    frames = fut.result()
                except BrokenProcessPool:
                    raise InputError(
                        "a worker process running the sampling driver's MD died (out of memory?): run the chains one "
                        "after another with execution.workers: 1"
                    ) from None
                results[index[fut]] = frames
                if on_done is not None:
                    on_done(index[fut], frames)
    except BaseException:
        stop_workers(pool)
        raise
    pool.shutdown(wait=True)
    return [results[i] for i in range(len(chains))]
