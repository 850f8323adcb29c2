"""The page of ``mlpkit compare``: one table, the parity plots side by side, and a recommendation from the numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from mlpkit.validation.html import HtmlReport

HTML_FILE = "report.html"


def _num(x, fmt: str = "{:.3g}") -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else fmt.format(x)


def recommendation(entries: Sequence) -> list[str]:
    """Plain sentences naming the best entry on each axis, from the measured numbers only."""
    ok = [e for e in entries if e.error is None and math.isfinite(e.force_mae_mev_a)]
    if not ok:
        return ["Nothing could be measured: see each row's error."]
    out = []
    best = min(ok, key=lambda e: e.force_mae_mev_a)
    out.append(f"Most accurate on this test set: {best.name} (force MAE {best.force_mae_mev_a:.3g} meV/Å).")
    timed = [e for e in ok if e.md_us_per_atom_step is not None]
    if timed:
        fast = min(timed, key=lambda e: e.md_us_per_atom_step)
        slow = max(timed, key=lambda e: e.md_us_per_atom_step)
        ratio = slow.md_us_per_atom_step / fast.md_us_per_atom_step
        out.append(
            f"Fastest MD: {fast.name} ({fast.md_us_per_atom_step:.3g} µs/atom/step"
            + (f", {ratio:.3g}x cheaper than {slow.name})." if slow is not fast else ").")
        )
    trained = [e for e in ok if e.train_seconds is not None]
    if trained:
        quick = min(trained, key=lambda e: e.train_seconds)
        out.append(f"Quickest to train: {quick.name} ({quick.train_seconds:.3g} s).")
    calibrated = [e for e in ok if e.uncertainty_spearman is not None]
    if calibrated:
        cal = max(calibrated, key=lambda e: e.uncertainty_spearman)
        out.append(
            f"Uncertainty that best ranks its own errors: {cal.name} ({cal.uncertainty}, Spearman "
            f"{cal.uncertainty_spearman:.2f}); without one, active learning needs a committee."
        )
    else:
        out.append("No entry reports an uncertainty: for active learning, train a committee (--committee) or a family "
                   "with its own (`mlpkit families`).")  # fmt: skip
    wild = [e for e in ok if e.max_predicted_force > 10.0]
    if wild:
        out.append(
            "Forces above 10 eV/Å on the test set (the checklist's bar): "
            + ", ".join(f"{e.name} ({e.max_predicted_force:.3g} eV/Å)" for e in wild)
            + ": do not run MD with these where the test data lie."
        )
    return out


#: the table's columns (the rows of :func:`table_rows`)
TABLE_HEADER = (
    "model",
    "family",
    "E MAE (meV/atom)",
    "F MAE (meV/Å)",
    "worst F error (meV/Å)",
    "train wall (s)",
    "MD (µs/atom/step)",
    "memory (KB/atom)",
    "uncertainty (kind, Spearman vs error)",
    "checklist PASS/WARN/FAIL",
    "error",
)


def table_rows(entries: Sequence) -> list[list[str]]:
    """One row of :data:`TABLE_HEADER` per entry (an :class:`mlpkit.workflows.compare.run.Entry`)."""
    rows = []
    for e in entries:
        checklist = e.checklist or {}
        rows.append(
            [
                e.name,
                e.family,
                _num(e.energy_mae_mev_atom),
                _num(e.force_mae_mev_a),
                _num(e.worst_force_error_mev_a),
                _num(e.train_seconds, "{:.1f}"),
                _num(e.md_us_per_atom_step),
                _num(e.memory_kb_per_atom, "{:.0f}"),
                f"{e.uncertainty}, {_num(e.uncertainty_spearman, '{:.2f}')}" if e.uncertainty != "none" else "none",
                "/".join(str(checklist.get(k, 0)) for k in ("PASS", "WARN", "FAIL")) if checklist else "–",
                e.error or "",
            ]
        )
    return rows


def add_parity_plots(page, entries: Sequence, out_dir: Path) -> None:
    """Every entry's energy and force parity plots, side by side (paths in ``entry.parity`` relative to out_dir)."""
    for e in entries:
        for kind in ("energy", "forces"):
            if kind in e.parity:
                page.add_image(out_dir / e.parity[kind], f"{e.name}: {kind}", wide=False)


def write_page(entries: Sequence, out_dir: Path, *, n_train: int, n_test: int) -> Path:
    page = HtmlReport(
        "mlpkit compare", subtitle=f"{len(entries)} models · {n_train} training and {n_test} test configurations"
    )
    page.add_heading("The table")
    page.add_table(list(TABLE_HEADER), table_rows(entries))
    page.add_paragraph(
        "Same training data, seed and test configurations for every row. MD cost: force calls on the same periodic "
        "box built from the test data, warm, median of several; memory: what the first call added to the process "
        "(rough). Spearman: rank correlation of the per-configuration uncertainty with the true worst force error."
    )
    page.add_heading("Recommendation")
    for sentence in recommendation(entries):
        page.add_paragraph(sentence)
    page.add_heading("Parity plots")
    add_parity_plots(page, entries, out_dir)
    return page.write(out_dir / HTML_FILE)
