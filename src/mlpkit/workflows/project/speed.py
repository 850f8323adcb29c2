"""Stage 7 of ``mlpkit run``: the ns/day table (reference MD vs MLP-MD vs a cheap baseline)."""

from __future__ import annotations

from mlpkit.files import atomic_write_json
from mlpkit.workflows.engine import Step
from mlpkit.workflows.project.context import ProjectRun


class Speed(Step):
    name = "speed"
    description = "ns/day: reference MD vs MLP-MD vs baseline"
    sections = ("speed",)

    def run(self, run: ProjectRun) -> dict:
        from mlpkit.md.speed import speed_table, speedup_summary

        s = run.cfg.speed
        if not s.enabled:
            return {"skipped": "speed.enabled is false"}
        rows = speed_table(
            run.start,
            reference=run.labeler,
            potential=run.potential("final"),
            baseline=s.baseline,
            reference_steps=s.reference_steps,
            mlp_steps=s.mlp_steps,
            baseline_steps=s.baseline_steps,
            timestep=s.timestep,
            progress=run.say,
        )
        data = {"rows": [r.to_dict() for r in rows], "ratios": speedup_summary(rows)}
        atomic_write_json(run.path("speed.json"), data)
        for r in rows:
            run.say(
                f"{r.engine:32s} {r.method:24s} {r.seconds_per_step * 1e3:10.2f} ms/step {r.ns_per_day:12.4g} ns/day"
            )
        return data
