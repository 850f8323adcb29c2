"""Production MD in segments: a killed run continues from its last finished segment, to the same trajectory."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.io import read

from mlpkit.md import UncertaintyWatchdog
from mlpkit.workflows.project.production_segments import run_segmented, segment_plan, segments_key


class _EMTWithSigma(Calculator):
    """EMT copper with a fake committee spread (``sigma(n)`` eV/Å on the n-th call); raises after ``crash_after``
    calls, as a killed process would stop."""

    implemented_properties = ["energy", "forces", "stress", "max_force_std"]

    def __init__(self, sigma=lambda n: 0.01, crash_after: int | None = None):
        super().__init__()
        self.emt, self.sigma, self.crash_after, self.calls = EMT(), sigma, crash_after, 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after:
            raise KeyboardInterrupt("killed")
        a = self.atoms.copy()
        a.calc = self.emt
        self.results = {"energy": a.get_potential_energy(), "forces": a.get_forces(), "stress": a.get_stress()}
        self.results["max_force_std"] = float(self.sigma(self.calls))


def _copper():
    return bulk("Cu", cubic=True).repeat((2, 2, 2))  # 32 atoms, periodic


def _run(tmp_path, calc, *, key="k", steps=60, segment=20, dog=None):
    return run_segmented(
        _copper(), calc, steps=steps, segment_steps=segment, out_dir=tmp_path, key=key,
        trajectory=tmp_path / "production.traj", watchdog=dog, temperature=300.0, timestep=2.0, friction=0.01,
        interval=5, seed=3,
    )  # fmt: skip


def test_segment_plan():
    assert segment_plan(100, 0, 2) == [100]
    assert segment_plan(100, 100, 2) == [100]
    assert segment_plan(100, 30, 4) == [28, 28, 28, 16]  # rounded to the frame interval
    assert segment_plan(100, 3, 10) == [10] * 10  # at least one interval


def test_segmented_run_is_one_trajectory(tmp_path):
    res, max_seen, loaded = _run(tmp_path, _EMTWithSigma(), dog=UncertaintyWatchdog(0.5, 1.0))
    assert loaded == 0 and res.completed and res.steps_done == 60
    assert [f.info["step"] for f in res.frames] == list(range(5, 61, 5))
    assert np.allclose([f.info["time_fs"] for f in res.frames], np.arange(5, 61, 5) * 2.0)
    assert res.temperatures.shape == (60,) and res.uncertainties.shape == (60,)
    assert max_seen == pytest.approx(0.01)
    traj = read(tmp_path / "production.traj", ":")
    assert len(traj) == 12 and np.array_equal(traj[-1].get_momenta(), res.frames[-1].get_momenta())
    assert sorted(p.name for p in (tmp_path / "segments").glob("*.npz")) == [f"segment-000{k}.npz" for k in range(3)]
    # one segment (segment_steps 0): one run_md call, no segments directory
    one, _, _ = _run(tmp_path / "one", _EMTWithSigma(), segment=0)
    assert one.steps_done == 60 and not (tmp_path / "one" / "segments").exists()


def test_a_killed_run_continues_to_the_same_trajectory(tmp_path):
    whole, _, _ = _run(tmp_path / "whole", _EMTWithSigma())
    # killed in the middle of the second segment (ASE's integrators call the calculator once per step)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "killed", _EMTWithSigma(crash_after=30))
    assert [p.name for p in (tmp_path / "killed" / "segments").glob("*.npz")] == ["segment-0000.npz"]
    calc = _EMTWithSigma()
    res, _, loaded = _run(tmp_path / "killed", calc)
    assert loaded == 1 and res.steps_done == 60
    assert calc.calls <= 42  # segments 2 and 3 only (40 steps and their first evaluations)
    assert [f.info["step"] for f in res.frames] == [f.info["step"] for f in whole.frames]
    # the continued segments are the uninterrupted run's: the next segment starts from the last frame's
    # full-precision state, not from the rounded extxyz (8 decimals), so they agree to rounding (EMT's neighbour
    # list, built afresh in the new process, sums in another order: 1e-16 growing to 1e-13 Å over 40 steps)
    assert np.array_equal(res.frames[3].positions, whole.frames[3].positions)
    for a, b in zip(res.frames[4:], whole.frames[4:], strict=True):
        assert np.abs(a.positions - b.positions).max() < 1e-9
        assert np.abs(a.get_momenta() - b.get_momenta()).max() < 1e-9
    assert np.allclose(res.temperatures, whole.temperatures, rtol=1e-9, atol=0)


def test_another_configuration_starts_over(tmp_path):
    _run(tmp_path, _EMTWithSigma(), key="a")
    _, _, loaded = _run(tmp_path, _EMTWithSigma(), key="a")
    assert loaded == 3
    _, _, loaded = _run(tmp_path, _EMTWithSigma(), key="b")
    assert loaded == 0


def test_a_watchdog_stop_ends_the_run_and_stays_ended(tmp_path):
    dog = UncertaintyWatchdog(0.2, 0.5)
    calc = _EMTWithSigma(sigma=lambda n: 0.6 if n > 30 else 0.3)  # flagged from the start, stops in segment 2
    res, max_seen, _ = _run(tmp_path, calc, dog=dog)
    assert res.stopped_because.startswith("uncertainty") and 20 < res.steps_done < 40
    assert max_seen >= 0.5 and res.uncertain_frames
    assert all(f.info["step"] <= res.steps_done for f in res.uncertain_frames)
    assert sorted(p.name for p in (tmp_path / "segments").glob("*.npz")) == ["segment-0000.npz", "segment-0001.npz"]
    again, seen_again, loaded = _run(tmp_path, _EMTWithSigma(), dog=UncertaintyWatchdog(0.2, 0.5))
    assert loaded == 2 and again.stopped_because == res.stopped_because and seen_again == max_seen


def test_the_key_follows_settings_and_files(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.pt").write_bytes(b"1")
    start = tmp_path / "start.extxyz"
    start.write_text("box")
    k = segments_key({"steps": 10}, [model, start])
    assert k == segments_key({"steps": 10}, [model, start])
    assert k != segments_key({"steps": 11}, [model, start])
    start.write_text("another box")
    assert k != segments_key({"steps": 10}, [model, start])
    (model / "weights.pt").write_bytes(b"2")
    assert k != segments_key({"steps": 10}, [model, start])
    assert segments_key({"steps": 10}, [model, tmp_path / "absent"]) == segments_key({"steps": 10}, [model])
