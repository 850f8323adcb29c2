"""The active-learning stopping rule judges iteration i by what iteration i had: a resumed run replays it for every
finished iteration, and labels added by later iterations must not stop it at an early one (a run killed while
training its last committee once resumed as if it had stopped after iteration 0, with that committee as final)."""

from __future__ import annotations

from types import SimpleNamespace

from mlpkit.workflows.active_learning import stop


class _State:
    def __init__(self, fractions):
        self.fractions = fractions

    def result(self, name):
        i = int(name.removeprefix("iter").split(".")[0])
        return {"untrusted_fraction": self.fractions[i]}


def _run(budget=110, max_iterations=4):
    cfg = SimpleNamespace(
        stop=SimpleNamespace(patience=2, candidate_fraction=0.1, force_mae=0.035, energy_mae_per_atom=None),
        max_iterations=max_iterations,
        label_budget=budget,
    )
    return SimpleNamespace(cfg=cfg, state=_State([0.99, 0.07, 0.09, 0.05, 0.04]), dataset=None, method="gfn2")


def test_the_budget_counts_the_labels_of_that_iteration(monkeypatch):
    monkeypatch.setattr(stop, "count_labels", lambda dataset, method: 110)  # the dataset now: budget spent
    run = _run()
    metrics = {"n_labels": 17, "test": {"forces_mae": 0.1007}}
    assert stop.should_stop(run, 0, metrics) == ""  # iteration 0 had 17 labels: it went on, and does so again
    assert "label budget" in stop.should_stop(run, 3, {"n_labels": 110, "test": {"forces_mae": 0.04}})


def test_a_state_without_the_count_falls_back_to_the_dataset(monkeypatch):
    monkeypatch.setattr(stop, "count_labels", lambda dataset, method: 110)
    assert "label budget" in stop.should_stop(_run(), 0, {"test": {"forces_mae": 0.1007}})
    monkeypatch.setattr(stop, "count_labels", lambda dataset, method: 20)
    assert stop.should_stop(_run(), 0, {"test": {"forces_mae": 0.1007}}) == ""
