"""The speed table times every engine in the same conditions: warmed up, same threads, in turn, median of blocks."""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from mlpkit.md import speed as S


class Logged(Calculator):
    """EMT that sleeps ``delay`` s per call and appends its name to a shared log (the call order)."""

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "forces"]

    def __init__(self, name: str, log: list, delay: float = 0.0):
        super().__init__()
        self.tag, self.log, self.delay = name, log, delay

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.log.append((self.tag, torch.get_num_threads()))
        time.sleep(self.delay)
        work = self.atoms.copy()
        work.calc = EMT()
        e = work.get_potential_energy()
        self.results = {"energy": e, "free_energy": e, "forces": work.get_forces()}


class FakeLabeler:
    """Just enough of a labeler for speed_table's reference slot."""

    name, method = "fake", "fake:slow"

    def __init__(self, log, delay):
        self.log, self.delay = log, delay

    def calculator(self):
        return Logged("reference", self.log, self.delay)


def _molecule() -> Atoms:
    atoms = Atoms("OH2", positions=[[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]])
    atoms.center(vacuum=4.0)
    return atoms


def test_engines_are_warmed_up_then_timed_in_turn_with_the_same_threads(monkeypatch):
    log: list = []
    monkeypatch.setattr(S, "baseline_methods", lambda atoms, baseline: ["emt"])
    monkeypatch.setattr(
        "mlpkit.labelers.make_labeler",
        lambda name: type("B", (), {"method": "emt", "calculator": lambda self: Logged("baseline", log, 0.0)})(),
    )
    before = torch.get_num_threads()
    rows = S.speed_table(
        _molecule(),
        reference=FakeLabeler(log, 0.0),
        baseline_steps=4,
        reference_steps=2,
        warmup=3,
        repeats=3,
        threads=1,
    )
    assert torch.get_num_threads() == before  # restored afterwards
    assert [r.kind for r in rows] == ["reference", "baseline"]
    names = [name for name, _ in log]
    # setup call + 3 warm-up steps each, first the reference then the baseline, none of it timed
    assert names[:8] == ["reference"] * 4 + ["baseline"] * 4
    # then three rounds: a block of 2 reference steps, a block of 4 baseline steps
    assert names[8:] == (["reference"] * 2 + ["baseline"] * 4) * 3
    assert {threads for _, threads in log} == {1}  # every engine ran with the same thread count
    for row in rows:
        assert row.repeats == 3 and row.warmup_steps == 3 and row.threads == 1
        assert row.min_seconds_per_step <= row.seconds_per_step <= row.max_seconds_per_step
        assert "median of 3 block(s)" in row.note and "3 warm-up step(s)" in row.note and "1 thread(s)" in row.note


def test_the_same_method_times_the_same_in_two_slots(monkeypatch):
    """The field report: one GFN2 method at 0.97 ms/step as reference and 61.7 ms/step as baseline."""
    log: list = []
    monkeypatch.setattr(S, "baseline_methods", lambda atoms, baseline: ["same"])
    monkeypatch.setattr(
        "mlpkit.labelers.make_labeler",
        lambda name: type("B", (), {"method": "same", "calculator": lambda self: Logged("baseline", log, 0.005)})(),
    )
    rows = S.speed_table(
        _molecule(), reference=FakeLabeler(log, 0.005), reference_steps=6, baseline_steps=6, warmup=1, repeats=3
    )
    ref, base = rows
    assert ref.seconds_per_step >= 0.005 and base.seconds_per_step >= 0.005
    # a 5 ms calculation per step in both slots: the medians agree far better than 60x (here within 1.5x)
    assert max(ref.seconds_per_step, base.seconds_per_step) / min(ref.seconds_per_step, base.seconds_per_step) < 1.5


def test_a_slow_reference_stops_at_its_time_cap():
    log: list = []
    row = S.measure_md_speed(
        _molecule(), Logged("slow", log, 0.05), steps=50, max_seconds=0.2, warmup=0, repeats=3, kind="reference"
    )
    assert 1 <= row.steps < 50 and row.repeats == 1
    assert "time cap of 0.2 s" in row.note
    assert row.seconds_per_step == pytest.approx(0.05, rel=0.5)
    with pytest.raises(ValueError, match="steps >= 1"):
        S.measure_md_speed(_molecule(), EMT(), steps=0)
    assert np.isfinite(row.ns_per_day)
