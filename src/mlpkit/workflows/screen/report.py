"""``screen.json`` and ``report.html`` of ``mlpkit screen``: the ranked table and how well the model ranked.

Numbers (over the candidates that have a reference label):

* ``spearman``: rank correlation between the model's score (round 0, and the last round's model) and the score of
  the reference energies;
* ``top_k_recall``: how many of the reference top k (among the labelled) were in the model's top k (round 0);
* ``labels_saved``: candidates not labelled, against labelling every one;
* with ``rounds`` > 1, per round the best reference score found so far, and the one-shot comparison: which of the
  picks the round-0 model alone would have chosen with the same budget (its top k x rounds) were labelled.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.files import atomic_write_json
from mlpkit.uncertainty.calibration import spearman
from mlpkit.validation.html import HtmlReport
from mlpkit.workflows.screen.candidates import rank

RESULT_FILE = "screen.json"
HTML_FILE = "report.html"


def _f(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _rho(a: list[float], b: list[float]) -> float | None:
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 3:
        return None
    return _f(spearman(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])))


def summarise(sc: Any) -> dict:
    """Every number of the report from a finished :class:`~mlpkit.workflows.screen.run.Screen`."""
    s = sc.settings
    rounds = s.rounds
    model0 = sc.scores(sc.model_energies(0))
    last = sc.scores(sc.model_energies(rounds - 1)) if rounds > 1 else model0
    picked_in = {h: r for r in range(rounds) for h in sc.state.result(f"select-{r}").get("selected", [])}
    all_ref = sc.reference_energies()  # the store may hold labels of other screens: this run's picks only
    ref_e = {h: e for h, e in all_ref.items() if h in picked_in}
    ref = {h: v for h, v in sc.scores(all_ref).items() if h in ref_e}
    order0 = rank(model0)
    rank0 = {h: i + 1 for i, h in enumerate(order0)}
    labelled = [h for h in order0 if math.isfinite(ref.get(h, math.nan))]
    ref_rank = {h: i + 1 for i, h in enumerate(rank({h: ref[h] for h in labelled}))}
    k = s.top
    ref_top = {h for h, i in ref_rank.items() if i <= k}
    model_top = set(order0[:k])
    base = sc.model_results(0)
    rows = []
    for c in sorted(sc.candidates, key=lambda c: rank0[c.hash]):
        n = len(c.atoms)
        rows.append(
            {
                "rank_model": rank0[c.hash],
                "name": c.name,
                "formula": c.formula,
                "n_atoms": n,
                "model_score": _f(model0[c.hash]),
                "model_energy_per_atom": _f(base.get(c.hash, {}).get("energy", math.nan) / n),
                "last_model_score": _f(last.get(c.hash)) if rounds > 1 else None,
                "relax_steps": base.get(c.hash, {}).get("relax_steps"),
                "round": picked_in.get(c.hash),
                "reference_score": _f(ref.get(c.hash)),
                "reference_energy_per_atom": _f(ref_e[c.hash] / n) if c.hash in ref_e else None,
                "rank_reference": ref_rank.get(c.hash),
                "model_error": base.get(c.hash, {}).get("error"),
                "hash": c.hash,
            }
        )
    best_by_round = []
    best = math.inf
    for r in range(rounds):
        for h in sc.state.result(f"select-{r}").get("selected", []):
            if math.isfinite(ref.get(h, math.nan)):
                best = min(best, ref[h])
        best_by_round.append(_f(best))
    one_shot = order0[: k * rounds]
    n_cand = len(sc.candidates)
    return {
        "candidates": n_cand,
        "skipped": sc.notes,
        "model": sc.model_name,
        "model_method": sc.method0,
        "reference_method": sc.labeler.method,
        "score": s.score,
        "top": k,
        "rounds": rounds,
        "relax": s.relax,
        "labelled": len(labelled),
        "label_failures": sum(1 for h in picked_in if not math.isfinite(ref.get(h, math.nan))),
        "labels_saved": n_cand - len(picked_in),
        "labels_saved_fraction": (n_cand - len(picked_in)) / n_cand,
        "spearman": _rho([model0[h] for h in labelled], [ref[h] for h in labelled]),
        "spearman_last_model": _rho([last[h] for h in labelled], [ref[h] for h in labelled]) if rounds > 1 else None,
        "top_k_recall": len(ref_top & model_top),
        "top_k_of": len(ref_top),
        "best_reference_score_by_round": best_by_round,
        "one_shot_picks_labelled": sum(1 for h in one_shot if h in picked_in) if rounds > 1 else None,
        "one_shot_best_reference_score": _f(min((ref[h] for h in one_shot if h in ref), default=math.nan)),
        "model_failures": sum(1 for r in rows if r["model_error"]),
        "table": rows,
    }


def _n(x: Any, fmt: str = "{:.4f}") -> str:
    return "–" if x is None else fmt.format(x) if isinstance(x, float) else str(x)


def write_report(sc: Any) -> dict:
    """Write ``screen.json`` and ``report.html`` into the run directory; return a small summary for the state file."""
    out: Path = sc.out
    data = summarise(sc)
    atomic_write_json(out / RESULT_FILE, data)
    rounds = f" x {data['rounds']} rounds" if data["rounds"] > 1 else ""
    page = HtmlReport(
        "mlpkit screen",
        subtitle=f"{data['candidates']} candidates · model {data['model_method']} · reference "
        f"{data['reference_method']} on the top {data['top']}{rounds}",
    )
    page.add_heading("Summary")
    for line in summary_lines(data):
        page.add_paragraph(line)
    page.add_heading(f"Ranked by the model (score: {data['score']}, lowest first)")
    header = ["model rank", "candidate", "formula", "model score", "model E/atom (eV)", "picked in round",
              "reference score", "reference E/atom (eV)", "reference rank"]  # fmt: skip
    table = [
        [r["rank_model"], r["name"], r["formula"], _n(r["model_score"]), _n(r["model_energy_per_atom"]),
         _n(r["round"]), _n(r["reference_score"]), _n(r["reference_energy_per_atom"]), _n(r["rank_reference"])]
        for r in data["table"]
    ]  # fmt: skip
    page.add_table(header, table)
    page.write(out / HTML_FILE)
    return {k: v for k, v in data.items() if k not in ("table", "skipped")}


def summary_lines(data: dict) -> list[str]:
    """Plain sentences with the report's numbers (also printed by the command)."""
    lines = [
        f"{data['labelled']} of {data['candidates']} candidates labelled with {data['reference_method']}"
        f" ({data['label_failures']} failed): {data['labels_saved']} labels saved "
        f"({100 * data['labels_saved_fraction']:.0f}%) against labelling everything.",
    ]
    rho, rho_last = data["spearman"], data["spearman_last_model"]
    lines.append(
        "Spearman rank correlation model vs reference over the labelled: "
        + ("– (fewer than 3 labelled)" if rho is None else f"{rho:.3f}")
        + ("" if rho_last is None else f"; with the last fine-tuned model {rho_last:.3f}")
        + "."
    )
    lines.append(
        f"The model's top {data['top']} held {data['top_k_recall']} of the reference top {data['top_k_of']} "
        "(among the labelled"
        + (
            "; with one round every label is a model pick, so this counts the picks only)."
            if data["rounds"] == 1
            else ")."
        )
    )
    if data["rounds"] > 1:
        best = ", ".join(_n(b) for b in data["best_reference_score_by_round"])
        lines.append(
            f"Best reference score found after each round: {best}. The round-0 model alone (one shot, same budget) "
            f"would have picked {data['one_shot_picks_labelled']} of the same candidates."
        )
    if data["model_failures"]:
        lines.append(f"{data['model_failures']} candidate(s) the model could not evaluate (ranked last).")
    return lines
