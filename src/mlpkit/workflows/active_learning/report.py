"""The run's report: learning curves (AL vs random), σ vs true error, and a summary in JSON and Markdown.

Written to ``RUN_DIR/report/``: ``summary.json``, ``summary.md``, ``learning_curve.png`` and
``calibration.png`` (σ vs true error on the test set, first and last committee), plus ``report.html`` when
the validation package's HTML builder is available.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from mlpkit.errors import InputError
from mlpkit.files import atomic_write_json, atomic_write_text, read_json
from mlpkit.workflows.active_learning.metrics import CURVE_METRICS
from mlpkit.workflows.engine import WorkflowState


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curve(summary: dict, path: Path) -> Path:
    """Test force MAE (meV/Å) and energy MAE (meV/atom) against the number of reference labels."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.0), dpi=120)
    curves = [("active learning", summary.get("curve") or [], "o-", "C0")]
    base = summary.get("baseline") or {}
    if base.get("points"):
        curves.append(("random sampling", base["points"], "s--", "C1"))
    for ax, key, unit, label in (
        (axes[0], "forces_mae", "meV/Å", "force MAE"),
        (axes[1], "energy_mae_per_atom", "meV/atom", "energy MAE"),
    ):
        for name, pts, style, color in curves:
            xs = [p["n_labels"] for p in pts if p.get(key) is not None]
            ys = [p[key] * 1000 for p in pts if p.get(key) is not None]
            if xs:
                ax.plot(xs, ys, style, color=color, label=name, ms=4)
        ax.set_xlabel("reference (DFT) labels")
        ax.set_ylabel(f"test {label} ({unit})")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    if base.get("al_final_forces_mae") is not None:
        axes[0].axhline(base["al_final_forces_mae"] * 1000, color="C0", lw=0.7, ls=":")
        if base.get("random_labels_needed"):
            axes[0].axvline(base["random_labels_needed"], color="C1", lw=0.7, ls=":")
    title = summary.get("baseline", {}) and summary["baseline"].get("verdict", "")
    fig.suptitle(title or "learning curve", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _spread(point: dict) -> str:
    """'median 4.1; 500 K 3.2, 1000 K 9.8' (meV/Å) from a curve point, or '' when the run predates them."""
    parts = []
    if point.get("forces_mae_frame_median") is not None:
        parts.append(f"median {point['forces_mae_frame_median'] * 1000:.1f}")
    by_t = point.get("forces_mae_by_temperature") or {}
    if by_t:
        parts.append(", ".join(f"{t} K {v * 1000:.1f}" for t, v in by_t.items()))
    return "; ".join(parts)


def _driver_line(driver: dict) -> list[str]:
    """The sampling driver of the run (a method or a potential), for the summary page; none for old runs."""
    if not driver:
        return []
    extra = ", ".join(f"{k} {driver[k]}" for k in ("family", "base_model", "method") if k in driver)
    return ["", f"Sampling driver: {driver.get('driver')}" + (f" ({extra})" if extra else "") + "."]


def _markdown(summary: dict) -> str:
    lines = [
        f"# Active learning: {Path(summary['run_dir']).name}",
        "",
        f"**Stopped:** {summary['stopped_because']}",
        "",
        f"Iterations (label rounds): {summary['iterations']}; reference labels: {summary['n_labels']} "
        f"(+{summary['n_failed']} failed, skipped); label time {summary['label_seconds']:.0f} s; "
        f"wall time {summary['wall_seconds']:.0f} s (this session).",
        *_driver_line(summary.get("driver") or {}),
        "",
        "| iteration | labels | test force MAE (meV/Å) | test energy MAE (meV/atom) | untrusted MD fraction "
        "| force MAE: frame median; by temperature (meV/Å) |",
        "|---|---|---|---|---|---|",
    ]
    for c in summary.get("curve", []):
        fm = c.get("forces_mae")
        em = c.get("energy_mae_per_atom")
        uf = c.get("untrusted_fraction")
        lines.append(
            f"| {c['iteration']} | {c['n_labels']} | {fm * 1000:.1f} | {em * 1000:.2f} | "
            f"{'' if uf is None else f'{uf:.3f}'} | {_spread(c)} |"
            if fm is not None
            else f"| {c['iteration']} | {c['n_labels']} | | | | |"
        )
    base = summary.get("baseline")
    if base:
        lines += [
            "",
            "## Random-sampling baseline (driver MD at the same conditions, same training and test set)",
            "",
            "| labels | test force MAE (meV/Å) | test energy MAE (meV/atom) "
            "| force MAE: frame median; by temperature (meV/Å) |",
            "|---|---|---|---|",
        ]
        for p in base.get("points", []):
            if p.get("forces_mae") is not None:
                lines.append(
                    f"| {p['n_labels']} | {p['forces_mae'] * 1000:.1f} | {p['energy_mae_per_atom'] * 1000:.2f} "
                    f"| {_spread(p)} |"
                )
        lines += ["", f"**Saving:** {base.get('verdict', '')}"]
        if base.get("saving") is not None:
            lines.append(
                f"(AL labels / random labels for the same force MAE = {base['saving']:.2f}; random "
                f"needed ≈ {base['random_labels_needed']:.0f})"
            )
    lines += ["", "![learning curve](learning_curve.png)", "", "![sigma vs error](calibration.png)", ""]
    return "\n".join(lines)


def _calibration_figure(run_dir: Path, summary: dict, path: Path) -> Path | None:
    """Side by side: σ vs true error on the test set for the first and the final committee."""
    import matplotlib.image as mpimg

    curve = summary.get("curve") or []
    if not curve:
        return None
    its = sorted({curve[0]["iteration"], curve[-1]["iteration"]})
    pngs = [run_dir / f"iter-{i:03d}" / "calibration-test.png" for i in its]
    pngs = [p for p in pngs if p.exists()]
    if not pngs:
        return None
    if len(pngs) == 1:
        shutil.copyfile(pngs[0], path)
        return path
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(pngs), figsize=(5 * len(pngs), 4.6), dpi=120)
    for ax, p in zip(np.atleast_1d(axes), pngs, strict=True):
        ax.imshow(mpimg.imread(p))
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(run_dir: str | os.PathLike, summary) -> Path:
    """Write report/ for ``summary`` (an :class:`ALSummary` or its dict); returns the report directory."""
    run_dir = Path(run_dir)
    data = summary.to_dict() if hasattr(summary, "to_dict") else dict(summary)
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    # calibration numbers per iteration, for the summary
    cal = []
    for c in data.get("curve", []):
        m = run_dir / f"iter-{c['iteration']:03d}" / "metrics.json"
        if m.exists():
            r = read_json(m)
            cal.append(
                {
                    "iteration": c["iteration"],
                    "test": r.get("calibration_test"),
                    "valid": r.get("calibration_valid"),
                    "trust": r.get("trust"),
                }
            )
    data["calibration"] = cal
    atomic_write_json(out / "summary.json", data)
    plot_learning_curve(data, out / "learning_curve.png")
    _calibration_figure(run_dir, data, out / "calibration.png")
    md = _markdown(data)
    if cal:
        md += "\n## Uncertainty calibration (test set; trust window from validation data)\n\n"
        md += "| iteration | Spearman ρ (frames) | Spearman ρ (atoms) | scale | trust lower | trust upper |\n"
        md += "|---|---|---|---|---|---|\n"
        for c in cal:
            t, tr = c.get("test") or {}, c.get("trust") or {}
            md += (
                f"| {c['iteration']} | {t.get('spearman_config', float('nan')):.2f} | "
                f"{t.get('spearman_atom', float('nan')):.2f} | {t.get('scale', float('nan')):.2f} | "
                f"{tr.get('lower', float('nan')):.3f} | {tr.get('upper', float('nan')):.3f} |\n"
            )
    atomic_write_text(out / "summary.md", md)
    _html(out, md)
    return out


def _html(out: Path, md: str) -> None:
    try:
        from mlpkit.validation.html import HtmlReport
    except ImportError:
        return
    try:
        rep = HtmlReport("Active learning report") if _takes_title(HtmlReport) else HtmlReport()
        for line in md.splitlines():
            if line.startswith("# "):
                rep.add_heading(line[2:])
            elif line.startswith("## "):
                rep.add_heading(line[3:])
            elif line and not line.startswith(("|", "![")):
                rep.add_paragraph(line.replace("**", ""))
        for png, cap in (
            ("learning_curve.png", "test error vs reference labels"),
            ("calibration.png", "predicted σ vs true error (test set)"),
        ):
            if (out / png).exists():
                rep.add_image(out / png, cap)
        rep.write(out / "report.html")
    except Exception:  # the HTML is a convenience; the Markdown and JSON are the record
        return


def _takes_title(cls) -> bool:
    import inspect

    try:
        return len(inspect.signature(cls).parameters) > 0
    except (TypeError, ValueError):
        return False


def regenerate(run_dir: str | os.PathLike) -> Path:
    """Rebuild report/ of a run: from its summary.json when finished, else from state.json (partial)."""
    run_dir = Path(run_dir)
    path = run_dir / "report" / "summary.json"
    if path.exists():
        return write_report(run_dir, read_json(path))
    state_path = run_dir / "state.json"
    if not state_path.exists():
        raise InputError(f"{run_dir} is not an active-learning run directory (no state.json)")
    state = WorkflowState(state_path)  # any state format version this mlpkit reads
    done = {k: state.result(k) for k in state.steps}
    curve = []
    for key in sorted(k for k in done if k.endswith(".train")):
        r = done[key]
        test = r.get("test") or {}
        expl = done.get(key.replace(".train", ".explore"), {})
        curve.append(
            {
                "iteration": r["iteration"],
                "n_labels": r["n_labels"],
                **{k: test.get(k) for k in CURVE_METRICS},
                "untrusted_fraction": expl.get("untrusted_fraction"),
            }
        )
    curve.sort(key=lambda c: c["iteration"])
    summary = {
        "run_dir": str(run_dir),
        "stopped_because": "(not finished: partial report)",
        "iterations": curve[-1]["iteration"] if curve else 0,
        "n_labels": curve[-1]["n_labels"] if curve else 0,
        "n_failed": 0,
        "curve": curve,
        "final_metrics": curve[-1] if curve else {},
        "baseline": None,
        "label_seconds": 0.0,
        "wall_seconds": 0.0,
    }
    return write_report(run_dir, summary)
