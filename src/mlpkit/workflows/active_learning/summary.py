"""The outcome of an active-learning run: the learning curve (one point per trained committee) and the
summary written to ``report/summary.json``."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlpkit.errors import InputError
from mlpkit.files import read_json
from mlpkit.sampling.driver import driver_provenance
from mlpkit.workflows.active_learning.labelling import count_labels
from mlpkit.workflows.active_learning.metrics import CURVE_METRICS


@dataclass
class ALSummary:
    """The outcome of a run (also written to ``report/summary.json``)."""

    run_dir: str
    stopped_because: str
    iterations: int
    n_labels: int
    n_failed: int
    curve: list[dict] = field(default_factory=list)
    final_metrics: dict = field(default_factory=dict)
    baseline: dict | None = None
    label_seconds: float = 0.0
    wall_seconds: float = 0.0
    #: what drove the sampling MD (:func:`mlpkit.sampling.driver.driver_provenance`)
    driver: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def curve(run, final: int) -> list[dict]:
    out = []
    for j in range(final + 1):
        r = run.state.result(f"iter{j}.train")
        if r:
            out.append(
                {
                    "iteration": j,
                    "n_labels": r["n_labels"],
                    **{k: r["test"].get(k) for k in CURVE_METRICS},
                    "untrusted_fraction": run.state.result(f"iter{j}.explore").get("untrusted_fraction"),
                }
            )
    return out


def summary(run, final: int, reason: str, baseline: dict | None, wall: float) -> ALSummary:
    s = run.dataset.summary()
    points = curve(run, final)
    n_failed = sum(run.dataset.count(status="failed", method=run.method, split=x) for x in ("train", "valid"))
    return ALSummary(
        run_dir=str(run.run_dir),
        stopped_because=reason,
        iterations=final,
        n_labels=count_labels(run.dataset, run.method),
        n_failed=n_failed,
        curve=points,
        final_metrics=points[-1] if points else {},
        baseline=baseline,
        label_seconds=float(s["label_seconds"]),
        wall_seconds=wall,
        driver=driver_provenance(run.driver),
    )


def load_summary(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / "report" / "summary.json"
    if not path.exists():
        raise InputError(f"{run_dir} has no finished report (report/summary.json); run `mlpkit learn` first")
    return read_json(path)
