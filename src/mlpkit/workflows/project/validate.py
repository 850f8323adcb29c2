"""Stage 4 of ``mlpkit run``: the quality checklist of the first committee (and the helper the learn stage
runs on the final one)."""

from __future__ import annotations

from mlpkit.workflows.engine import Step
from mlpkit.workflows.project.context import ProjectRun, load_json


def validate_potential(run: ProjectRun, which: str) -> dict:
    """The checklist of ``models/<which>`` (report in ``validation/<which>/``) and its headline numbers."""
    from mlpkit.validation import ValidationSettings, validate

    settings = ValidationSettings(**run.cfg.validation.model_dump(exclude={"enabled"}))
    pot = run.potential(which)
    train, test = run.labelled("train"), run.labelled("test")
    if not test:
        test = train
        run.say("[yellow]no test set (sampling.n_test = 0): validating on the training data[/]")
    report = validate(
        pot,
        train,
        test,
        out_dir=run.path("validation", which),
        settings=settings,
        reference=run.labeler,
        progress=run.progress,
        name=f"{which} committee",
        cache_dir=run.path("reference-cache"),  # shared with the checklists inside the loop: one reference Hessian
    )
    d = report.to_dict()
    test_m = d.get("metrics", {}).get("test", {})
    return {
        "passed": d.get("passed"),
        "counts": d.get("counts"),
        "test_forces_mae": test_m.get("forces_mae"),
        "test_energy_mae_per_atom": test_m.get("energy_mae_per_atom"),
        "json": str(report.json_path),
        "html": str(report.html_path),
    }


class Validate(Step):
    name = "validate"
    description = "quality checklist of the first committee"
    sections = ("validation",)

    def run(self, run: ProjectRun) -> dict:
        if not run.cfg.validation.enabled:
            return {"skipped": "validation.enabled is false"}
        res = validate_potential(run, "initial")
        c = res["counts"] or {}
        run.say(f"checklist: {c.get('PASS', 0)} PASS, {c.get('WARN', 0)} WARN, {c.get('FAIL', 0)} FAIL")
        return res


def validation_reference_frequencies(run: ProjectRun) -> list[float] | None:
    """The reference method's harmonic frequencies (cm⁻¹) the validation computed, if it did."""
    for which in ("final", "initial"):
        data = load_json(run.path("validation", which, "validation.json")) or {}
        for check in data.get("checks", []):
            if check.get("key") == "vibrations":
                ref = (check.get("details") or {}).get("reference") or {}
                if isinstance(ref, dict) and ref.get("frequencies"):
                    return [float(x) for x in ref["frequencies"]]
    return None
