"""The summary of ``mlpkit run``: one line per stage saying what it produced, the summary dict
(``summary.json``) and the table printed at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlpkit.workflows.project.context import ProjectRun

#: the stages of ``mlpkit run``, in order (the step objects are in :mod:`mlpkit.workflows.project.runner`)
STAGES = ("sample", "label", "train", "validate", "learn", "production", "speed", "compare", "report")


def stage_summary(stage: str, result: dict) -> str:
    """One line that says what a finished stage produced (for the summary table)."""

    def f(x, fmt="{:.3g}"):
        return "–" if x is None else fmt.format(x)

    if "skipped" in result:
        return str(result["skipped"])
    if stage == "sample":
        return f"{result.get('initial')} initial + {result.get('test')} test configurations ({result.get('driver')})"
    if stage == "label":
        return (
            f"{result.get('train')} train + {result.get('valid', 0)} valid + {result.get('test')} test labels of "
            f"{result.get('method')}, "
            f"{result.get('failed', 0)} failed, {f(result.get('label_seconds'), '{:.1f}')} s of reference time"
        )
    if stage == "train":
        return f"committee on {result.get('n_train')} configurations ({f(result.get('seconds'), '{:.0f}')} s)"
    if stage in ("validate",):
        c = result.get("counts") or {}
        return (
            f"{c.get('PASS', 0)} PASS / {c.get('WARN', 0)} WARN / {c.get('FAIL', 0)} FAIL; test force MAE "
            f"{f(_milli(result.get('test_forces_mae')), '{:.1f}')} meV/Å"
        )
    if stage == "learn":
        v = result.get("validation") or {}
        c = v.get("counts") or {}
        bits = []
        for key, label in (("iterations", "iterations"), ("n_labels", "labels"), ("stopped_because", "stop")):
            if result.get(key) is not None:
                bits.append(f"{label}: {result[key]}")
        if c:
            bits.append(f"final checklist {c.get('PASS', 0)} PASS / {c.get('WARN', 0)} WARN / {c.get('FAIL', 0)} FAIL")
        if v.get("test_forces_mae") is not None:
            bits.append(f"test force MAE {_milli(v['test_forces_mae']):.1f} meV/Å")
        per_t = [r for r in result.get("per_temperature") or [] if r.get("temperature") is not None]
        if per_t:
            bits.append(
                "per temperature "
                + ", ".join(f"{r['temperature']:g} K {_milli(r['forces_mae']):.1f}" for r in per_t)
                + " meV/Å"
            )
        targeted = sum(int(r.get("labels", 0)) for r in result.get("physics_rounds") or [])
        if targeted:
            bits.append(f"{targeted} labels targeted by the physics checklist")
        return "; ".join(bits)
    if stage == "production":
        stop = result.get("stopped_because") or "completed"
        atoms = (result.get("system") or {}).get("atoms")
        return (
            (f"{atoms:,} atoms, " if atoms else "")
            + f"{result.get('steps_done')}/{result.get('steps')} steps ({stop}); {result.get('n_uncertain')} uncertain "
            f"frames; max σ {f(result.get('max_uncertainty'))} eV/Å"
        )
    if stage == "speed":
        ratios = result.get("ratios", {})
        r = ratios.get("mlp_over_reference")
        if not r:
            return f"{len(result.get('rows', []))} engines timed"
        n = len(result.get("rows", []))
        if r >= 1:
            return f"MLP-MD {r:,.3g}x faster than reference MD ({n} engines timed)"
        return f"MLP-MD {1 / r:,.3g}x slower than reference MD ({n} engines timed; see the speed table's notes)"
    if stage == "compare":
        if not result.get("most_accurate"):
            return f"{result.get('rows')} rows; no family could be measured alone"
        return (
            f"{result.get('rows')} rows; most accurate family alone: {result.get('most_accurate')} "
            f"({f(result.get('force_mae_mev_a'))} meV/Å)"
        )
    if stage == "report":
        return str(result.get("path"))
    return ""


def _milli(x):
    return None if x is None else 1000 * float(x)


def project_summary(run: ProjectRun) -> dict:
    rows = []
    for stage in STAGES:
        rec = run.state.steps.get(stage)
        if rec:
            rows.append(
                {
                    "stage": stage,
                    "status": "done",
                    "seconds": rec.get("seconds", 0.0),
                    "result": stage_summary(stage, rec.get("result", {})),
                }
            )
        else:
            rows.append({"stage": stage, "status": "pending", "seconds": None, "result": ""})
    report = run.state.result("report").get("path")
    out = {
        "project": run.cfg.project.name,
        "run_dir": str(run.run_dir),
        "stages": rows,
        "report": report,
        "total_stage_seconds": sum(r["seconds"] or 0.0 for r in rows),
        "complete": all(r["status"] == "done" for r in rows),
    }
    props = run.state.result("production").get("properties") or {}
    if props.get("kind") == "condensed":
        from mlpkit.workflows.project.report_liquid import liquid_summary

        out["liquid"] = liquid_summary(props)
    return out


def print_summary(summary: dict, console) -> None:
    from rich.table import Table

    table = Table(title=f"mlpkit run: {summary['project']}", show_lines=False)
    table.add_column("stage", style="bold")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("result")
    for r in summary["stages"]:
        status = "[green]done[/]" if r["status"] == "done" else "[yellow]pending[/]"
        secs = "" if r["seconds"] is None else _fmt_seconds(r["seconds"])
        table.add_row(r["stage"], status, secs, r["result"])
    console.print(table)
    console.print(f"total stage time: {_fmt_seconds(summary['total_stage_seconds'])}", highlight=False)
    if summary.get("report"):
        console.print(f"[bold]report:[/] {summary['report']}", highlight=False)
    if not summary["complete"]:
        console.print("[yellow]not every stage has run; run the same command again to continue[/]")


def _fmt_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    return f"{m} min {sec:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"
