"""The HTML page of a validation run (``report.html``): verdict, checklist, errors, figures and settings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from mlpkit.validation.checks import FAIL, PASS, SKIP, WARN
from mlpkit.validation.result import HTML_FILE, ValidationReport


def _rel(path: Path, root: Path) -> str:
    return str(Path(path).resolve().relative_to(root.resolve()))


def _short_method(method: str) -> str:
    return "reference" if method == "unknown" else method


def _fmt(x, unit_scale: float = 1.0, digits: int = 3) -> str:
    try:
        return f"{float(x) * unit_scale:.{digits}g}"
    except (TypeError, ValueError):
        return str(x)


def write_html(report: ValidationReport) -> Path:
    """Render ``report`` as the self-contained report.html in its directory."""
    from mlpkit.validation.html import HtmlReport

    info = report.info
    out = report.out_dir
    page = HtmlReport(
        f"Validation of {info['name']}",
        subtitle=f"family {info['family']} · elements {', '.join(info['species'])} · "
        f"{info['n_train']} training / {info['n_test']} test configurations · data {', '.join(info['test_methods'])}",
    )
    c = report.counts
    verdict = "no check failed" if report.passed else f"{c[FAIL]} check(s) FAILED"
    page.add_heading("Checklist")
    page.add_paragraph(
        f"{c[PASS]} PASS, {c[FAIL]} FAIL, {c[WARN]} WARN, {c[SKIP]} SKIP: {verdict}. Total time {report.seconds:.1f} s."
    )
    page.add_table(
        ["#", "check", "status", "measured", "bar", "note"],
        [[i + 1, r.title, r.status, r.value, r.threshold, r.message] for i, r in enumerate(report.checks)],
        status_column=2,
    )

    # errors
    m = report.metrics
    if m:
        page.add_heading("Errors")
        rows = []
        for split in ("train", "test"):
            d = m[split]
            rows.append(
                [
                    split,
                    d["n_configs"],
                    _fmt(d["energy_mae_per_atom"], 1000),
                    _fmt(d["energy_rmse_per_atom"], 1000),
                    _fmt(d["energy_max_error_per_atom"], 1000),
                    _fmt(d["forces_mae"], 1000),
                    _fmt(d["forces_rmse"], 1000),
                    _fmt(d["forces_max_error"], 1000),
                ]
            )
        page.add_table(
            ["data", "configs", "E MAE (meV/atom)", "E RMSE", "E max", "F MAE (meV/Å)", "F RMSE", "F max error"], rows
        )
        symbols = sorted(set(m["train"]["per_element"]) | set(m["test"]["per_element"]))
        page.add_table(
            ["element", "train F MAE (meV/Å)", "train F RMSE", "test F MAE (meV/Å)", "test F RMSE"],
            [
                [
                    sym,
                    _fmt(m["train"]["per_element"].get(sym, {}).get("forces_mae"), 1000),
                    _fmt(m["train"]["per_element"].get(sym, {}).get("forces_rmse"), 1000),
                    _fmt(m["test"]["per_element"].get(sym, {}).get("forces_mae"), 1000),
                    _fmt(m["test"]["per_element"].get(sym, {}).get("forces_rmse"), 1000),
                ]
                for sym in symbols
            ],
        )
        _figures(
            page,
            report,
            ("test_errors", "train_errors"),
            {
                "parity_energy.png": "Energy parity, test set",
                "parity_forces.png": "Force parity, test set",
                "error_histograms.png": "Error histograms, test set",
                "per_element_forces.png": "Force MAE per element",
                "train/parity_energy.png": "Energy parity, training set",
                "train/parity_forces.png": "Force parity, training set",
            },
        )

    sections = [
        ("nve_energy", "Energy conservation (NVE)"),
        ("vibrations", "Harmonic frequencies"),
        ("extrapolation", "Extrapolation"),
    ]
    for key, title in sections:
        try:
            row = report.check(key)
        except KeyError:
            continue
        page.add_heading(title)
        page.add_paragraph(f"{row.status}: {row.value}. {row.message}".strip())
        if key == "nve_energy" and row.details:
            d = row.details
            page.add_table(
                ["quantity", "value"],
                [
                    ["timestep (fs)", _fmt(d.get("timestep_fs"))],
                    ["steps", d.get("steps")],
                    ["start temperature (K)", _fmt(d.get("temperature_start"))],
                    ["mean temperature (K)", _fmt(d.get("mean_temperature"))],
                    ["drift (meV/atom/ps)", _fmt(d.get("drift_mev_per_atom_per_ps"))],
                    ["E_tot fluctuation (meV/atom)", _fmt(d.get("fluctuation_mev_per_atom"))],
                    ["E_kin fluctuation (meV/atom)", _fmt(d.get("ekin_std_mev_per_atom"))],
                ],
            )
        if key == "vibrations" and row.details.get("model"):
            fm = row.details["model"]["frequencies"]
            fr = row.details.get("reference", {}).get("frequencies")
            ref_name = row.details.get("reference", {}).get("method") or "reference"
            fr_ = list(fr or [])
            rows = [
                [
                    i + 1,
                    f"{fm[i]:.1f}" if i < len(fm) else "",
                    f"{fr_[i]:.1f}" if i < len(fr_) else "",
                    f"{fm[i] - fr_[i]:+.1f}" if i < min(len(fm), len(fr_)) else "",
                ]
                for i in range(max(len(fm), len(fr_)))
            ]
            page.add_table(["mode", "model (cm⁻¹)", f"{ref_name} (cm⁻¹)", "Δ (cm⁻¹)"], rows)
            notes = [
                f"model relaxation: {row.details['model']['relax_steps']} steps, final fmax "
                f"{row.details['model']['final_fmax']:.1e} eV/Å"
            ]
            if fr is not None:
                ref = row.details["reference"]
                notes.append(
                    f"reference relaxation: {ref['relax_steps']} steps, final fmax {ref['final_fmax']:.1e} "
                    f"eV/Å, {ref['seconds']:.1f} s" + (" (from cache)" if row.details.get("reference_cached") else "")
                )
            page.add_paragraph("; ".join(notes) + ".")
        if key == "extrapolation" and row.details:
            d = row.details
            page.add_table(
                ["criterion", "test configurations outside"],
                [[k.replace("_", " "), v] for k, v in d.get("counts_outside", {}).items()],
            )
        _figures(page, report, (key,), {})

    page.add_heading("Timings")
    page.add_table(["step", "seconds"], [[k, f"{v:.1f}"] for k, v in report.timings.items()])
    page.add_heading("Settings")
    page.add_preformatted(json.dumps(report.settings.model_dump(), indent=1))
    return page.write(out / HTML_FILE)


def _figures(page, report: ValidationReport, keys: Sequence[str], captions: dict[str, str]) -> None:
    seen: set[str] = set()
    for key in keys:
        try:
            row = report.check(key)
        except KeyError:
            continue
        for fig in row.figures:
            if fig in seen or not (report.out_dir / fig).is_file():
                continue
            seen.add(fig)
            page.add_image(report.out_dir / fig, captions.get(fig, row.title))
