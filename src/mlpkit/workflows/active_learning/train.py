"""Train the iteration's committee (warm-started from the previous one), evaluate it on the test set and
calibrate its uncertainty; the calibration sets the trust window (:mod:`.trust`)."""

from __future__ import annotations

import time

from ase import Atoms

from mlpkit.config.active_learning import ActiveLearningConfig
from mlpkit.files import atomic_write_json
from mlpkit.workflows.active_learning.context import ITER_SEED_STRIDE
from mlpkit.workflows.active_learning.metrics import evaluate_committee
from mlpkit.workflows.active_learning.trust import trust_bounds
from mlpkit.workflows.engine import Step


def train_step(cfg: ActiveLearningConfig, train: list[Atoms], valid: list[Atoms], previous, seed: int):
    from mlpkit.uncertainty.model_spec import fit_model

    return fit_model(
        cfg.committee.spec(),
        train,
        valid or None,
        seed=seed,
        previous=previous,
        processes=cfg.execution.fit_processes(),
    )


# -- the loop ------------------------------------------------------------------------------------------


class Train(Step):
    description = "train the committee, evaluate it, set the trust window"

    def __init__(self, i: int):
        self.i = i
        self.name = f"iter{i}.train"

    def run(self, run) -> dict:
        i = self.i
        from mlpkit.uncertainty.calibration import calibrate, plot_calibration

        d = run.iter_dir(i)
        train, valid = run.labelled()
        n_labels = len(train) + len(valid)
        prev = run.load_committee(i - 1) if i > 0 else None
        prev_n = run.state.result(f"iter{i - 1}.train").get("n_labels") if i > 0 else None
        t0 = time.perf_counter()
        if prev is not None and prev_n == n_labels:
            run.log(f"iteration {i}: no new labels, keeping the previous committee")
            committee = prev
        else:
            run.log(
                f"iteration {i}: training a committee of {run.cfg.committee.n_members} on {len(train)} "
                f"train + {len(valid)} valid configurations"
            )
            committee = train_step(run.cfg, train, valid, prev, run.cfg.seed + ITER_SEED_STRIDE * i)
        committee.metadata.update(method=run.method, iteration=i, n_labels=n_labels)
        committee.save(d / "model")
        train_seconds = time.perf_counter() - t0
        metrics = evaluate_committee(committee, run.test)
        # calibration on validation data sets the trust window; on the test set it is reported only
        cal_valid = calibrate(committee, valid) if len(valid) >= 3 else None
        cal_test = calibrate(committee, run.test) if run.test else None
        if cal_test is not None:
            plot_calibration(
                cal_test,
                d / "calibration-test.png",
                title=f"iteration {i}: test set, Spearman ρ = {cal_test.spearman_config:.2f}",
            )
        bounds = trust_bounds(run, committee, valid, train, cal_valid)
        result = {
            "iteration": i,
            "n_labels": n_labels,
            "n_train": len(train),
            "n_valid": len(valid),
            "test": metrics,
            "train_seconds": train_seconds,
            "trust": bounds,
            "calibration_valid": cal_valid.to_dict() if cal_valid else None,
            "calibration_test": cal_test.to_dict() if cal_test else None,
        }
        atomic_write_json(d / "metrics.json", result)
        if metrics:
            run.log(
                f"iteration {i}: {n_labels} labels, test force MAE {metrics['forces_mae'] * 1000:.1f} meV/Å, "
                f"energy MAE {metrics['energy_mae_per_atom'] * 1000:.2f} meV/atom; trust window "
                f"[{bounds['lower']:.3f}, {bounds['upper']:.3f}) eV/Å"
            )
        return result
