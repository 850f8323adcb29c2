"""The project report: one self-contained HTML file (mlpkit.validation.html.HtmlReport, images embedded) with
the summary, the data, the validation checklist of the final potential, the active-learning curves, production
MD and its properties, and the speed table. Built from the files the pipeline stages left in the run directory,
so it can be rebuilt at any time (``mlpkit run CONFIG --stage report``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlpkit.config.project import commented_yaml
from mlpkit.workflows.engine import Step
from mlpkit.workflows.project.compare import compare_section
from mlpkit.workflows.project.context import ProjectRun
from mlpkit.workflows.project.formatting import format_number as _fmt
from mlpkit.workflows.project.production_system import system_text
from mlpkit.workflows.project.report_domain import domain_section, physics_section
from mlpkit.workflows.project.report_liquid import LIQUID_FIGURES, liquid_section
from mlpkit.workflows.project.summary import STAGES, stage_summary
from mlpkit.workflows.project.validate import validation_reference_frequencies


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _image(page, path: Any, caption: str, wide: bool | None = None) -> None:
    """Embed ``path`` if it exists (a stage that was skipped leaves no figure). ``wide``: full page width."""
    if path and Path(path).is_file():
        try:
            page.add_image(path, caption, wide=wide)
        except TypeError:  # an HtmlReport without layout hints
            page.add_image(path, caption)


def _validation_section(page, run: ProjectRun, which: str) -> None:
    vdir = run.path("validation", which)
    data = _load(vdir / "validation.json")
    if not data:
        page.add_paragraph(f"No validation of the {which} committee (validation disabled or not run yet).")
        return
    counts = data.get("counts", {})
    page.add_paragraph(
        f"{counts.get('PASS', 0)} PASS, {counts.get('WARN', 0)} WARN, {counts.get('FAIL', 0)} FAIL, "
        f"{counts.get('SKIP', 0)} SKIP. Full checklist report: {vdir / 'report.html'}"
    )
    rows = [
        [c.get("title", c.get("key")), c.get("status"), c.get("value"), c.get("threshold"), c.get("message", "")]
        for c in data.get("checks", [])
    ]
    page.add_table(["check", "status", "measured", "bar", "note"], rows, status_column=1)
    figures: list[str] = []
    for c in data.get("checks", []):
        for fig in c.get("figures", []) or []:
            if fig not in figures:
                figures.append(fig)
    for png in sorted(vdir.glob("*.png")):
        if png.name not in figures:
            figures.append(png.name)
    for fig in figures:
        _image(page, vdir / fig, Path(fig).stem.replace("_", " "))


def _milli(x: Any, fmt: str = "{:.1f}") -> str:
    return "–" if x is None else fmt.format(1000 * float(x))


def _temperature_text(res: dict) -> str:
    """Mean ± standard error (block averages) and why a small molecule's mean may sit off target."""
    t = res.get("temperature")
    if not t:
        return f"{_fmt(res.get('mean_temperature'), '{:.0f}')} K"
    return f"{t['mean']:.0f} ± {t['sem']:.0f} K (instantaneous spread {t['std']:.0f} K). {t.get('note', '')}"


def _active_learning_section(page, run: ProjectRun) -> None:
    res = run.state.result("learn")
    if not res:
        page.add_paragraph("Active learning has not run yet.")
        return
    if "skipped" in res:
        page.add_paragraph(res["skipped"])
        return
    trust = res.get("trust") or {}
    rows = [
        ["stopped because", res.get("stopped_because", "–")],
        ["iterations", res.get("iterations", "–")],
        ["reference labels used (initial + selected)", res.get("n_labels", "–")],
        ["failed labels", res.get("n_failed", "–")],
        ["reference time spent", f"{_fmt(res.get('label_seconds'), '{:.0f}')} s"],
        ["wall time", f"{_fmt(res.get('wall_seconds'), '{:.0f}')} s"],
    ]
    if trust:
        rows.append(
            [
                "final trust window (calibrated σ, eV/Å)",
                f"[{_fmt(trust.get('lower'))}, {_fmt(trust.get('upper'))}) · scale {_fmt(trust.get('scale'))} · "
                f"lower: {trust.get('lower_from', '')}; upper: {trust.get('upper_from', '')}",
            ]
        )
    base = res.get("baseline") or {}
    if base:
        rows.append(["random-sampling baseline", base.get("verdict", "")])
        if base.get("saving") is not None:
            rows.append(["labels AL / labels random for the same test error", f"{base['saving']:.2f}"])
    page.add_table(["quantity", "value"], rows)
    curve = res.get("curve") or []
    if curve:
        page.add_table(
            [
                "iteration",
                "labels",
                "test force MAE (meV/Å)",
                "test force RMSE (meV/Å)",
                "test energy MAE (meV/atom)",
                "untrusted fraction of exploration",
            ],
            [
                [
                    c.get("iteration"),
                    c.get("n_labels"),
                    _milli(c.get("forces_mae")),
                    _milli(c.get("forces_rmse")),
                    _milli(c.get("energy_mae_per_atom"), "{:.2f}"),
                    _fmt(c.get("untrusted_fraction"), "{:.3f}"),
                ]
                for c in curve
            ],
        )
    choice = res.get("model_choice") or {}
    if choice.get("iterations"):
        page.add_paragraph(
            f"Model handed over: iteration {choice['chosen_iteration']} ({choice['rule']}; "
            f"{choice.get('n_valid', 0)} validation labels)."
        )
        page.add_table(
            [
                "iteration",
                "validation force MAE (meV/Å)",
                "validation energy MAE (meV/atom)",
                "checklist when the loop stopped",
                "handed over",
            ],
            [
                [
                    r["iteration"],
                    _milli(r["valid_force_mae"]),
                    _milli(r["valid_energy_mae"], "{:.2f}"),
                    r.get("checklist") or "not run",
                    "✔" if r["iteration"] == choice["chosen_iteration"] else "",
                ]
                for r in choice["iterations"]
            ],
        )
    points = base.get("points") or []
    if points:
        page.add_table(
            ["random baseline point", "labels", "test force MAE (meV/Å)", "test energy MAE (meV/atom)"],
            [
                [
                    p.get("point"),
                    p.get("n_labels"),
                    _milli(p.get("forces_mae")),
                    _milli(p.get("energy_mae_per_atom"), "{:.2f}"),
                ]
                for p in points
            ],
        )
    plots = sorted(run.path("report").glob("*.png"))
    for png in plots:
        _image(page, png, f"active learning: {png.stem.replace('_', ' ')}")
    if not plots:
        page.add_paragraph(f"(no active-learning plots in {run.path('report')})")


def _production_section(page, run: ProjectRun) -> None:
    res = run.state.result("production")
    if not res:
        page.add_paragraph("Production MD has not run yet.")
        return
    if "skipped" in res:
        page.add_paragraph(res["skipped"])
        return
    p = run.cfg.production
    dog = res.get("watchdog") or {}
    page.add_table(
        ["quantity", "value"],
        [
            [
                "ensemble",
                f"{p.ensemble.upper()} at {p.temperature:g} K"
                + (f" and {p.pressure:g} bar (barostat period {p.barostat_time:g} fs)" if p.ensemble == "npt" else "")
                + f", timestep {p.timestep:g} fs",
            ],
            ["system", system_text(res.get("system"))],
            ["steps run", f"{res.get('steps_done')} of {res.get('steps')}"],
            ["stopped because", res.get("stopped_because") or "completed"],
            ["mean temperature", _temperature_text(res)],
            [
                "watchdog bounds (calibrated σ)",
                f"warn {_fmt(dog.get('warn'))}, stop {_fmt(dog.get('stop'))} eV/Å ({dog.get('from', '')})",
            ],
            ["max uncertainty seen", f"{_fmt(res.get('max_uncertainty'))} eV/Å"],
            ["uncertain frames saved", f"{res.get('n_uncertain')} → {res.get('uncertain_file')}"],
            ["trajectory", res.get("trajectory")],
            [
                "wall time",
                f"{_fmt(res.get('seconds'), '{:.1f}')} s ({_fmt(res.get('us_per_atom_step'), '{:.2f}')} µs/atom/step)",
            ],
        ],
    )
    _image(page, res.get("md_plot"), "temperature and committee uncertainty along the run", wide=True)
    props = res.get("properties") or {}
    if "skipped" in props:
        page.add_paragraph(props["skipped"])
        return
    page.add_heading("Properties from the trajectory", level=3)
    if props.get("kind") == "molecule":
        spec = props.get("spectrum", {})
        harm = props.get("harmonic_cm-1", [])
        ref = _reference_frequencies(run)
        rows = [
            ["MD power-spectrum peaks (VACF)", ", ".join(f"{x:.0f}" for x in spec.get("peaks_cm-1", []))],
            ["harmonic frequencies, final potential", ", ".join(f"{x:.1f}" for x in harm)],
        ]
        if ref:
            rows.append(["harmonic frequencies, reference method", ", ".join(f"{x:.1f}" for x in ref)])
        rows.append(
            [
                "spectral resolution / Nyquist limit",
                f"{_fmt(spec.get('resolution_cm-1'), '{:.0f}')} / {_fmt(spec.get('nyquist_cm-1'), '{:.0f}')}",
            ]
        )
        page.add_table(["vibrations (cm⁻¹)", "values"], rows)
        page.add_paragraph(
            "MD peaks are anharmonic and thermally broadened (and at finite temperature shifted below the harmonic "
            "values); the harmonic frequencies are at the potential's own minimum."
        )
        if props.get("warning"):
            page.add_paragraph(props["warning"])
    elif props.get("kind") == "condensed":
        liquid_section(page, props, p)
        for key, caption in LIQUID_FIGURES:
            _image(page, (props.get("plots") or {}).get(key), caption)
        return
    _image(
        page,
        (props.get("plots") or {}).get("spectrum"),
        "vibrational spectrum (velocity autocorrelation) and harmonic frequencies",
    )


def _reference_frequencies(run: ProjectRun) -> list[float]:
    return validation_reference_frequencies(run) or []


def _speed_section(page, run: ProjectRun) -> None:
    from mlpkit.md.speed import format_rate

    data = _load(run.path("speed.json"))
    if not data:
        page.add_paragraph("The speed table has not been measured (speed.enabled false or not run yet).")
        return
    rows = []
    for r in data.get("rows", []):
        rows.append(
            [
                r["engine"],
                r["method"],
                r["n_atoms"],
                r["steps"],
                f"{r['seconds_per_step'] * 1e3:.3g}",
                f"{r['us_per_atom_step']:.3g}",
                format_rate(r["ns_per_day"]),
                r["threads"],
                r.get("note", ""),
            ]
        )
    page.add_table(
        ["engine", "method", "atoms", "steps timed", "ms/step", "µs/atom/step", "simulated per day", "threads", "note"],
        rows,
    )
    ratios = data.get("ratios", {})
    if ratios:
        page.add_paragraph(
            "Speed ratios (seconds per step of the other engine / of MLP-MD): "
            + "; ".join(f"{k.replace('_', ' ')}: {v:,.3g}x" for k, v in ratios.items())
        )
    page.add_paragraph(
        "Measured on this machine for this system with the same velocity-Verlet driver and thread count: each engine "
        "warmed up first, the engines timed in turn, the median of several blocks of steps (each row's note). "
        "The source's table 5.1: classical MD ns/day, DFT-MD ps/day, MLP-MD ns/day."
    )


def build_report(run: ProjectRun) -> Path:
    """Write the report to ``run_dir/report.file`` and return its path."""
    from mlpkit.validation.html import HtmlReport

    cfg = run.cfg
    start = run.start
    page = HtmlReport(
        cfg.report.title or f"mlpkit project: {cfg.project.name}",
        subtitle=f"{start.get_chemical_formula()} ({len(start)} atoms) · reference {run.labeler.method} · "
        f"model {cfg.model.family} committee of {cfg.model.committee.n_members} · run directory {run.run_dir}",
    )

    page.add_heading("Summary")
    rows = []
    for stage in STAGES:
        rec = run.state.steps.get(stage)
        if stage == "report":
            rows.append([stage, "done", "", "this page"])
        elif rec:
            rows.append([stage, "done", f"{rec.get('seconds', 0):.1f} s", stage_summary(stage, rec.get("result", {}))])
        else:
            rows.append([stage, "not run", "", ""])
    page.add_table(["stage", "status", "time", "result"], rows)

    page.add_heading("Data")
    ds = run.dataset.summary()
    page.add_table(
        ["quantity", "value"],
        [
            ["store", ds["url"]],
            ["rows", ds["rows"]],
            ["by status", ", ".join(f"{k}: {v}" for k, v in ds["status"].items())],
            ["by source", ", ".join(f"{k}: {v}" for k, v in ds["sources"].items())],
            ["reference time spent", f"{ds['label_seconds']:.0f} s"],
        ],
    )

    page.add_heading("Validation of the final potential")
    final_done = run.path("validation", "final", "validation.json").is_file()
    _validation_section(page, run, "final" if final_done else "initial")
    if final_done and run.path("validation", "initial", "validation.json").is_file():
        page.add_heading("First committee (before active learning)", level=3)
        data = _load(run.path("validation", "initial", "validation.json")) or {}
        page.add_table(
            ["check", "status", "measured"],
            [[c.get("title"), c.get("status"), c.get("value")] for c in data.get("checks", [])],
            status_column=1,
        )

    compare_section(page, run)  # a committee of several families: each alone on the test set

    page.add_heading("Errors over the declared domain")
    domain_section(page, run)

    page.add_heading("Active learning")
    _active_learning_section(page, run)

    page.add_heading("Physics in the stopping rule", level=3)
    physics_section(page, run)

    page.add_heading("Production MD")
    _production_section(page, run)

    page.add_heading("Speed: reference MD vs MLP-MD vs baseline (ns/day)")
    _speed_section(page, run)

    page.add_heading("Configuration")
    page.add_preformatted(commented_yaml(cfg))
    return page.write(run.path(cfg.report.file))


class Report(Step):
    name = "report"
    description = "HTML report"
    sections = ("report", "project.name")

    def run(self, run: ProjectRun) -> dict:
        return {"path": str(build_report(run))}
