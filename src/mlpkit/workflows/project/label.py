"""Stage 2 of ``mlpkit run``: label every pending configuration with the reference method on Dask."""

from __future__ import annotations

from mlpkit.errors import MlpkitError
from mlpkit.workflows.engine import Step
from mlpkit.workflows.project.context import ProjectRun


class Label(Step):
    name = "label"
    description = "reference calculations (Dask)"
    sections = ("reference",)

    def run(self, run: ProjectRun) -> dict:
        """Label every pending row of the reference method on Dask (each result stored as it arrives)."""
        from mlpkit.execution import label_pending

        ex = run.cfg.execution
        labeler = run.labeler
        rep = label_pending(
            run.dataset,
            labeler,
            workers=ex.workers,
            scheduler=ex.scheduler,
            cluster_config=run.cfg.jobqueue_config(),
            progress=run.progress,
        )
        ds = run.dataset
        n_train = ds.count(method=labeler.method, status="labelled", split="train")
        n_valid = ds.count(method=labeler.method, status="labelled", split="valid")
        n_test = ds.count(method=labeler.method, status="labelled", split="test")
        n_failed = ds.count(method=labeler.method, status="failed")
        run.say(
            f"{rep.labelled} labelled now, {rep.failed} failed ({rep.seconds:.0f} s; {getattr(rep, 'workers', '')}); "
            f"store: {n_train} train, {n_valid} valid, {n_test} test, {n_failed} failed"
        )
        if n_train < 2:
            raise MlpkitError(
                f"only {n_train} training configurations could be labelled with {labeler.method} "
                f"({n_failed} failed; see `mlpkit data summary --db {run.cfg.database_url}`)"
            )
        if n_test == 0 and (run.cfg.sampling.n_test > 0 or run.cfg.domain.declared):
            raise MlpkitError("no test configuration could be labelled; see the failed rows in the dataset")
        label_seconds = sum(float(r.get("seconds", 0.0)) for r in ds.rows(method=labeler.method, status="labelled"))
        return {
            "labelled_now": rep.labelled,
            "failed_now": rep.failed,
            "train": n_train,
            "valid": n_valid,
            "test": n_test,
            "failed": n_failed,
            "label_seconds": label_seconds,
            "method": labeler.method,
        }
