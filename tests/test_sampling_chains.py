"""The sample stage's driver MD runs side by side in spawned processes: the same frames as one after another, in
the order given, and only where the driver's MD is worth a process."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from mlpkit.labelers import make_labeler
from mlpkit.sampling.chains import picklable, run_chains
from mlpkit.workflows.project.sample import MIN_SECONDS_FOR_PROCESSES, chain_processes


def _box():
    box = bulk("Cu", cubic=True).repeat(2)
    box.rattle(0.05, seed=2)
    return box


CHAINS = [
    dict(temperature=600.0, steps=40, every=10, thermostat="langevin", timestep=2.0, seed=1),
    dict(temperature=900.0, steps=30, every=10, thermostat="langevin", timestep=2.0, seed=2),
    dict(temperature=300.0, steps=20, every=5, thermostat="npt", timestep=2.0, barostat_time=200.0, seed=3),
]


def test_chains_in_processes_give_the_frames_of_one_process_in_order():
    driver = make_labeler("emt")  # deterministic and single-threaded: the frames must agree bit for bit
    finished: list[int] = []
    serial = run_chains(_box(), driver, CHAINS, processes=1)
    side_by_side = run_chains(_box(), driver, CHAINS, processes=2, on_done=lambda i, frames: finished.append(i))
    assert [len(f) for f in side_by_side] == [4, 3, 4]
    assert sorted(finished) == [0, 1, 2]
    for a, b in zip(serial, side_by_side, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.positions, y.positions)
            np.testing.assert_array_equal(x.cell.array, y.cell.array)
            assert x.info["temperature"] == y.info["temperature"]
    # each chain is its own run: its seed and temperature, not a continuation of the one before
    assert not np.allclose(side_by_side[0][0].positions, side_by_side[1][0].positions)
    assert "density" in side_by_side[2][0].info  # the NPT chain


def test_a_driver_that_cannot_be_pickled_runs_in_this_process():
    from ase.calculators.emt import EMT

    driver = EMT()
    driver.hook = lambda: None  # a lambda does not pickle (as a live connection or an open file would not)
    assert not picklable(driver) and picklable(make_labeler("emt"))
    frames = run_chains(_box(), driver, CHAINS[:2], processes=2)
    assert [len(f) for f in frames] == [4, 3]


def test_processes_only_for_driver_md_that_pays_for_them():
    cheap = MIN_SECONDS_FOR_PROCESSES / 1000 / 2  # s per step: 1000 steps take half the threshold
    assert chain_processes(2, 3, cheap, 1000) == 1
    assert chain_processes(2, 3, 1.6, 560) == 2  # GFN2-xTB on the example's 48-atom box: ~15 min of MD
    assert chain_processes(8, 3, 1.6, 560) == 3  # never more processes than runs
    assert chain_processes(1, 3, 1.6, 560) == 1


@pytest.mark.parametrize("workers", [0, 1])
def test_chain_processes_with_workers_below_two_is_one(workers):
    assert chain_processes(workers, 3, 10.0, 1000) == 1
