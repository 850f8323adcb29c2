"""Two sections of the project report: the final potential's errors over the declared domain (per temperature,
with each temperature's worst test frames), and what the physics checklist in the stopping rule did (which check
triggered which labels, and the check's value before and after)."""

from __future__ import annotations

from typing import Any

from mlpkit.workflows.project.context import ProjectRun


def _m(x: Any, fmt: str = "{:.1f}") -> str:
    return "–" if x is None else fmt.format(1000 * float(x))


def domain_section(page, run: ProjectRun) -> None:
    """Errors per temperature of the final potential on the test set, and the worst frames of each."""
    res = run.state.result("learn")
    rows = res.get("per_temperature") or []
    d = run.cfg.domain
    temps = ", ".join(f"{t:g}" for t in run.cfg.domain_temperatures)
    if d.declared:
        walkers = ", ".join(f"{t:g}" for t in run.cfg.exploration_temperatures())
        page.add_paragraph(
            f"Declared domain: {temps} K. Exploration walkers at {walkers} K; test set: {d.test_frames} frames per "
            f"temperature from independent {run.cfg.sampling.driver} Langevin runs ({d.test_timestep:g} fs, friction "
            f"{d.test_friction:g}/fs, {d.test_equilibration * d.test_timestep:g} fs of equilibration discarded, "
            f"frames {d.test_stride * d.test_timestep:g} fs apart), labelled with {run.labeler.method}."
        )
    else:
        page.add_paragraph(
            f"No domain declared (domain.temperatures): the run samples at {temps} K and its test set is "
            f"sampling.n_test frames at {', '.join(f'{t:g}' for t in run.cfg.sampling.test_temperatures)} K."
        )
    if not rows:
        page.add_paragraph("No per-temperature errors yet (the learn stage has not finished).")
        return
    page.add_table(
        [
            "temperature (K)",
            "test frames",
            "force MAE (meV/Å)",
            "force RMSE (meV/Å)",
            "max force error (meV/Å)",
            "energy MAE (meV/atom)",
        ],
        [
            [
                "–" if r["temperature"] is None else f"{r['temperature']:g}",
                r["n"],
                _m(r["forces_mae"]),
                _m(r["forces_rmse"]),
                _m(r["forces_max_error"], "{:.0f}"),
                _m(r["energy_mae_per_atom"], "{:.2f}"),
            ]
            for r in rows
        ],
    )
    worst = [(r, w) for r in rows for w in r.get("worst", [])]
    if worst:
        page.add_table(
            [
                "temperature (K)",
                "test frame",
                "force MAE (meV/Å)",
                "max force error (meV/Å)",
                "shortest distance (Å)",
                "longest distance (Å)",
            ],
            [
                [
                    "–" if r["temperature"] is None else f"{r['temperature']:g}",
                    w["index"],
                    _m(w["forces_mae"]),
                    _m(w["forces_max_error"], "{:.0f}"),
                    f"{w['min_distance']:.3f}",
                    f"{w['max_distance']:.3f}",
                ]
                for r, w in worst
            ],
        )
        page.add_paragraph(
            "Worst frames: the test frames (index in configs/test-labelled.extxyz) with the largest force MAE at each "
            "temperature; the interatomic distance range says how far each is from equilibrium."
        )


def physics_section(page, run: ProjectRun) -> None:
    """The physics checklist in the stopping rule: one row per targeted-label action."""
    res = run.state.result("learn")
    rows = res.get("physics_rounds")
    p = run.cfg.active_learning.physics
    if not p.enabled or not run.cfg.validation.enabled:
        page.add_paragraph("The physics checklist is not part of the stopping rule (active_learning.physics.enabled).")
        return
    page.add_paragraph(
        f"When the loop stops, the checklist of its committee runs; a failed check that sampling can fix "
        f"({', '.join(p.checks)}) sends it back with targeted labels: at most {p.max_rounds} round(s), "
        f"{p.labels_per_check} labels per check and round, {p.max_labels} labels in all."
    )
    if not rows:
        page.add_paragraph("No checklist ran inside the loop yet.")
        return

    def value(d: dict) -> str:
        return "; ".join(f"{v['status']} {v['value']}" for v in d.values()) or "–"

    page.add_table(
        ["round", "iteration", "check", "labels added", "configurations", "before", "after"],
        [
            [
                "–" if r["round"] is None else r["round"],
                r["iteration"],
                r["check"],
                r["labels"],
                r.get("what", ""),
                value(r["before"]),
                value(r["after"]),
            ]
            for r in rows
        ],
    )
