"""Stage 3 of ``mlpkit run``: the first committee, trained on the labelled initial set."""

from __future__ import annotations

import time

from mlpkit.workflows.engine import Step
from mlpkit.workflows.project.context import ProjectRun


class Train(Step):
    name = "train"
    description = "first committee"
    sections = ("model",)

    def run(self, run: ProjectRun) -> dict:
        """Train the first committee on the labelled initial set (the 'valid' share drives early stopping)."""
        from mlpkit.uncertainty.model_spec import fit_model

        m = run.cfg.model
        train, valid = run.labelled("train"), run.labelled("valid")
        run.say(
            f"{m.committee.n_members} x {m.family} on {len(train)} configurations ({len(valid)} for early stopping)"
        )
        t0 = time.perf_counter()
        # checkpoints beside the model: a run interrupted mid-training continues from the last one
        model = fit_model(
            m,
            train,
            valid or None,
            seed=run.cfg.project.seed,
            progress=run.progress,
            checkpoint_dir=str(run.path("models", "initial.ckpt")),
            processes=run.cfg.execution.fit_processes(),
        )
        model.save(run.path("models", "initial"))
        run._cache.pop("model-initial", None)
        return {"n_train": len(train), "n_valid": len(valid), "seconds": time.perf_counter() - t0}
