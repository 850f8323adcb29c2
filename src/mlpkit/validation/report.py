"""``validate``: run the whole quality checklist on a potential and write validation.json + report.html.

Checks (each a measurement; thresholds in :class:`~mlpkit.validation.settings.ValidationSettings`):

1. training / test errors (energy per atom, forces), test within 2x training;
2. parity plots, error histograms, per-element force errors (figures, no verdict);
3. NVE energy conservation and stability (velocity Verlet from a test configuration);
4. rotation, translation and permutation invariance;
5. forces are −dE/dx (finite differences);
6. no force above 10 eV/Å on the test set and along the NVE run;
7. harmonic frequencies against the reference method (molecules);
8. extrapolation: test configurations outside the training distribution.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.data.records import methods_of, reference_results
from mlpkit.errors import InputError, UnsupportedSpeciesError
from mlpkit.potentials.base import Potential
from mlpkit.validation.checks import (
    FAIL,
    PASS,
    SKIP,
    STATUSES,
    WARN,
    CheckResult,
    _jsonable,
    check_errors,
    check_gradients,
    check_invariances,
    check_max_force,
)
from mlpkit.validation.settings import ValidationSettings

JSON_FILE = "validation.json"
HTML_FILE = "report.html"


@dataclass
class ValidationReport:
    """The outcome of :func:`validate`: every check row plus the numbers and files behind them."""

    checks: list[CheckResult]
    out_dir: Path
    settings: ValidationSettings
    metrics: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in STATUSES}

    @property
    def passed(self) -> bool:
        """True when no check FAILed (WARN and SKIP allowed)."""
        return not any(c.status == FAIL for c in self.checks)

    def check(self, key: str) -> CheckResult:
        """The row with this key (``train_errors``, ``nve_energy``, ``vibrations``, ...)."""
        for c in self.checks:
            if c.key == key:
                return c
        raise KeyError(f"no check {key!r}; have {[c.key for c in self.checks]}")

    @property
    def json_path(self) -> Path:
        return self.out_dir / JSON_FILE

    @property
    def html_path(self) -> Path:
        return self.out_dir / HTML_FILE

    def to_dict(self) -> dict:
        return _jsonable(
            {
                "passed": self.passed,
                "counts": self.counts,
                "checks": [c.to_dict() for c in self.checks],
                "metrics": self.metrics,
                "timings_seconds": self.timings,
                "seconds": self.seconds,
                "info": self.info,
                "settings": self.settings.model_dump(),
                **self.extra,
            }
        )


def reference_from_method(method: str):
    """A labeler for a recorded method string (``pyscf:PBE/def2-SVP``, ``tblite:GFN2-xTB``, ``emt``), or None.

    Used to compute reference frequencies with the same level of theory as the training data.
    """
    from mlpkit.labelers import make_labeler

    m = method.strip()
    code, _, rest = m.partition(":")
    code = code.split("-")[0].lower()  # "pyscf-2.14" -> "pyscf"
    if code == "pyscf" and "/" in rest:
        xc, basis = rest.split("/", 1)
        return make_labeler("pyscf", xc=xc, basis=basis)
    if code == "tblite" and rest:
        return make_labeler("gfn2", hamiltonian=rest.split("-")[0].lower())
    if code == "emt":
        return make_labeler("emt")
    return None


def _console():
    from rich.console import Console

    return Console(stderr=True)


def validate(
    potential: Potential,
    train: Sequence[Atoms],
    test: Sequence[Atoms],
    *,
    out_dir: str | os.PathLike,
    settings: ValidationSettings | None = None,
    reference=None,
    progress: bool = True,
    name: str | None = None,
) -> ValidationReport:
    """Run every check on ``potential`` and write ``validation.json``, ``report.html`` and PNGs to ``out_dir``.

    train, test: labelled configurations (Atoms with a SinglePointCalculator: energy eV, forces eV/Å).
    reference:   a Labeler (or a make_labeler spec) of the training data's method, for the frequency check;
                 None skips the comparison (the model's frequencies are still reported).
    name:        what the report calls the model (default: its family).
    A check that crashes is recorded as FAIL with the error (and traceback in the JSON); the report is
    written regardless. Raises :class:`InputError` for unusable input (no labels, unknown elements).
    """
    from mlpkit.labelers import Labeler, make_labeler

    t_start = time.perf_counter()
    s = settings or ValidationSettings()
    if reference is not None and not isinstance(reference, Labeler):
        reference = make_labeler(reference)
    train, test = list(train), list(test)
    if not train:
        raise InputError("validation needs training configurations (the training errors are a check)")
    if not test:
        raise InputError("validation needs test configurations")
    reference_results(train)
    reference_results(test)
    for what, images in (("training", train), ("test", test)):
        try:
            potential.check_species(images)
        except UnsupportedSpeciesError as exc:
            raise UnsupportedSpeciesError(f"{what} data: {exc}") from None
    for what in ("nve_start_index", "vibrations_start_index"):
        if getattr(s, what) >= len(test):
            raise InputError(f"{what}={getattr(s, what)} but the test set has {len(test)} configurations")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    console = _console() if progress else None

    checks: list[CheckResult] = []
    timings: dict[str, float] = {}
    extra: dict = {}
    state: dict = {}

    def run(key: str, label: str, fn: Callable[[], list[CheckResult]]) -> None:
        if console:
            console.print(f"[bold]▶ {label}[/]", highlight=False)
        t0 = time.perf_counter()
        try:
            rows = fn()
        except Exception as exc:  # a crash of the potential (or the reference) is a finding, not the end
            rows = [
                CheckResult(
                    key=key,
                    title=label,
                    status=FAIL,
                    value=f"crashed: {type(exc).__name__}",
                    threshold="",
                    message=f"{type(exc).__name__}: {exc}",
                    details={"traceback": traceback.format_exc()},
                )
            ]
        dt = time.perf_counter() - t0
        timings[key] = dt
        for r in rows:
            r.seconds = dt / len(rows)
        checks.extend(rows)
        if console:
            for r in rows:
                colour = {"PASS": "green", "FAIL": "red", "WARN": "yellow", "SKIP": "dim"}[r.status]
                console.print(f"  [{colour}]{r.status}[/] {r.title}: {r.value}", highlight=False)
            console.print(f"  [dim]{dt:.1f} s[/]", highlight=False)

    # 1 + 2: errors and their figures ------------------------------------------------------------------
    def errors() -> list[CheckResult]:
        from mlpkit.validation.checks import error_tables
        from mlpkit.validation.parity import error_histograms, parity_plots
        from mlpkit.validation.plots import per_element_plot

        m_tr, t_tr, m_te, t_te = error_tables(potential, train, test, s.batch_size)
        state["test_table"] = t_te
        extra_metrics = {"train": m_tr, "test": m_te}
        state["metrics"] = extra_metrics
        rows = check_errors(m_tr, m_te, s)
        ref_name = _short_method(methods_of(test)[0])
        figs = parity_plots(t_te, out, label=name or potential.family, reference=ref_name)
        tr_figs = parity_plots(t_tr, out / "train", label=name or potential.family, reference=ref_name)
        hist = error_histograms(t_te, out)
        pe = per_element_plot(m_tr["per_element"], m_te["per_element"], out / "per_element_forces.png")
        rows[0].figures = [_rel(tr_figs["energy"], out), _rel(tr_figs["forces"], out)]
        rows[1].figures = [_rel(figs["energy"], out), _rel(figs["forces"], out), _rel(hist, out), _rel(pe, out)]
        return rows

    run("errors", "Errors on training and test data", errors)

    # 4. invariances -----------------------------------------------------------------------------------
    run("invariances", "Invariances", lambda: check_invariances(potential, test, s))

    # 5. gradients -------------------------------------------------------------------------------------
    run("force_gradient", "Forces are gradients", lambda: [check_gradients(potential, test, s)])

    # 3. NVE -------------------------------------------------------------------------------------------
    def nve() -> list[CheckResult]:
        from mlpkit.validation.nve import check_nve, run_nve
        from mlpkit.validation.plots import nve_plot

        start = _pick(test, s.nve_start_index, "nve_start_index")
        result = run_nve(potential, start, s)
        mf = result.max_force
        state["nve_max_force"] = float(mf.max()) if np.all(np.isfinite(mf)) else float("inf")
        rows = check_nve(result, s)
        fig = nve_plot(result, out / "nve_energy.png")
        for r in rows:
            r.figures = [_rel(fig, out)]
        extra["nve"] = {
            "time_fs": result.time_fs[:: max(1, len(result.time_fs) // 500)],
            "etot": result.etot[:: max(1, len(result.time_fs) // 500)],
        }
        return rows

    if s.nve:
        run("nve", "NVE energy conservation and stability", nve)
    else:
        checks.append(
            CheckResult(key="nve_energy", title="NVE energy conservation", status=SKIP, value="disabled", threshold="")
        )

    # 6. force magnitude --------------------------------------------------------------------------------
    def max_force() -> list[CheckResult]:
        if "test_table" not in state:
            raise RuntimeError("the error check failed, so there are no test predictions")
        return [check_max_force(state["test_table"], s, state.get("nve_max_force"))]

    run("max_force", "Force magnitude", max_force)

    # 7. vibrations ------------------------------------------------------------------------------------
    def vibrations() -> list[CheckResult]:
        from mlpkit.validation.plots import frequency_plot
        from mlpkit.validation.vibrations import check_vibrations

        start = _pick(test, s.vibrations_start_index, "vibrations_start_index")
        row, data = check_vibrations(potential, start, s, reference, cache_dir=out / "cache", progress=progress)
        if data.get("model"):
            ref = data.get("reference", {}).get("frequencies")
            fig = frequency_plot(
                data["model"]["frequencies"],
                ref,
                out / "frequencies.png",
                reference_label=getattr(reference, "method", "reference"),
            )
            row.figures = [_rel(fig, out)]
        extra["vibrations"] = data
        return [row]

    if s.vibrations:
        run("vibrations", "Harmonic frequencies", vibrations)

    # 8. extrapolation ---------------------------------------------------------------------------------
    def extrapolation() -> list[CheckResult]:
        from mlpkit.validation.extrapolation import check_extrapolation
        from mlpkit.validation.plots import extrapolation_plot

        row, data = check_extrapolation(potential, train, test, s)
        if data.get("descriptors"):
            row.figures = [_rel(extrapolation_plot(data["descriptors"], out / "extrapolation.png"), out)]
        return [row]

    run("extrapolation", "Extrapolation", extrapolation)

    info = {
        "name": name or potential.family,
        "family": potential.family,
        "species": list(potential.species),
        "cutoff": getattr(potential, "cutoff", None),
        "has_uncertainty": bool(getattr(potential, "has_uncertainty", False)),
        "has_descriptors": callable(getattr(potential, "descriptors", None)),
        "model_metadata": {
            k: v for k, v in getattr(potential, "metadata", {}).items() if isinstance(v, (str, int, float, bool))
        },
        "n_train": len(train),
        "n_test": len(test),
        "train_methods": methods_of(train),
        "test_methods": methods_of(test),
        "reference_method": getattr(reference, "method", None),
    }
    report = ValidationReport(
        checks=checks,
        out_dir=out,
        settings=s,
        metrics=state.get("metrics", {}),
        timings=timings,
        info=info,
        extra=extra,
        seconds=time.perf_counter() - t_start,
    )
    tmp = out / f".{JSON_FILE}.tmp"
    tmp.write_text(json.dumps(report.to_dict(), indent=1))
    os.replace(tmp, report.json_path)
    write_html(report)
    return report


def _pick(images: Sequence[Atoms], index: int, what: str) -> Atoms:
    if index >= len(images):
        raise InputError(f"{what}={index} but the test set has {len(images)} configurations")
    atoms = images[index].copy()
    atoms.calc = None
    return atoms


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
