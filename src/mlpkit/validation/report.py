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
from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.data.records import methods_of, reference_results
from mlpkit.errors import InputError, UnsupportedSpeciesError
from mlpkit.potentials.base import Potential
from mlpkit.validation.checks import (
    FAIL,
    SKIP,
    CheckResult,
    check_errors,
    check_gradients,
    check_invariances,
    check_max_force,
)
from mlpkit.validation.report_page import _rel, _short_method, write_html
from mlpkit.validation.result import HTML_FILE, JSON_FILE, ValidationReport
from mlpkit.validation.settings import ValidationSettings

__all__ = ["HTML_FILE", "JSON_FILE", "ValidationReport", "reference_from_method", "validate", "write_html"]


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
    cache_dir: str | os.PathLike | None = None,
) -> ValidationReport:
    """Run every check on ``potential`` and write ``validation.json``, ``report.html`` and PNGs to ``out_dir``.

    train, test: labelled configurations (Atoms with a SinglePointCalculator: energy eV, forces eV/Å).
    reference:   a Labeler (or a make_labeler spec) of the training data's method, for the frequency check;
                 None skips the comparison (the model's frequencies are still reported).
    name:        what the report calls the model (default: its family).
    cache_dir:   where the reference frequencies are cached (default ``out_dir/cache``); validations of several
                 models on the same data share one to compute the reference's Hessian once.
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
        row, data = check_vibrations(
            potential, start, s, reference, cache_dir=Path(cache_dir) if cache_dir else out / "cache", progress=progress
        )
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
