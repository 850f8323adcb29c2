"""Stage 8 of ``mlpkit run`` for a committee of several families (query by committee across algorithms): every
family of the final committee measured alone on the project's test set, beside the committee itself, in the table
of ``mlpkit compare`` (:mod:`mlpkit.workflows.compare`).

The members were all trained on the same labels by the active-learning loop (the same training data, seed and
test configurations for every row, as ``mlpkit compare`` asks), so the table answers "which family would have done
on its own?" without training anything again. Per row: energy and force MAE, worst force error, the member's fit
wall time (from its metadata; the committee's row: the sum), MD cost on a periodic box of ~300 atoms built from the
test data, the memory its first call added, and its uncertainty with the Spearman rank correlation against its true
worst force error. The physics checklist is not rerun per member: the committee's is the validation section.
A committee of one family skips this stage.

Results: ``RUN_DIR/compare/compare.json`` (every number) and ``compare/parity/NAME/`` (parity plots), shown by the
report (:func:`compare_section`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mlpkit.files import atomic_write_json
from mlpkit.workflows.engine import Step
from mlpkit.workflows.project.context import ProjectRun, load_json

#: the directory of this stage's results in the run directory
COMPARE_DIR = "compare"
#: atoms of the periodic box the MD cost is measured on (as ``mlpkit compare``'s default)
MD_ATOMS = 300
#: the committee's own row
COMMITTEE_ROW = "committee (mean)"


def member_names(families: list[str]) -> list[str]:
    """One row name per member: its family, numbered where a family appears more than once (bpnn, bpnn-2)."""
    seen: Counter = Counter()
    names = []
    for family in families:
        seen[family] += 1
        names.append(family if seen[family] == 1 else f"{family}-{seen[family]}")
    return names


class Compare(Step):
    name = "compare"
    description = "every family of a mixed committee alone on the test set"
    sections = ()

    def run(self, run: ProjectRun) -> dict:
        from mlpkit.workflows.compare.report import recommendation
        from mlpkit.workflows.compare.run import failed_entry, md_box, measure

        committee = run.potential("final")
        members = list(getattr(committee, "members", [committee]))
        families = [m.family for m in members]
        test = run.labelled("test")
        out = run.path(COMPARE_DIR)
        # a table from an earlier model of this run directory must not reach the report as this model's
        (out / "compare.json").unlink(missing_ok=True)
        if len(set(families)) < 2:
            return {"skipped": f"one family ({families[0]}): nothing to compare"}
        if not test:
            return {"skipped": "no test set (sampling.n_test = 0)"}
        out.mkdir(parents=True, exist_ok=True)
        box = md_box(test, MD_ATOMS)
        entries = []
        seconds = [m.metadata.get("fit_seconds") for m in members]
        rows = [*zip(member_names(families), members, seconds, strict=True)]
        total = sum(seconds) if all(s is not None for s in seconds) else None
        rows.append((COMMITTEE_ROW, committee, total))
        for name, potential, fit_seconds in rows:
            run.say(f"{name}: measuring on {len(test)} test configurations and a {len(box)}-atom box")
            try:
                entry = measure(name, potential, test, out, source="models/final", train_seconds=fit_seconds,
                                box=box, checklist=None)  # fmt: skip
            except Exception as exc:  # one model that cannot be measured must not hide the others' numbers
                entry = failed_entry(name, potential.family, "models/final", exc)
            entries.append(entry)
        data = {"entries": [e.to_dict() for e in entries], "n_test": len(test), "md_atoms": len(box)}
        atomic_write_json(out / "compare.json", data)
        run.say(recommendation(entries)[0])
        alone = [e for e in entries if e.name != COMMITTEE_ROW and e.error is None]
        best = min(alone, key=lambda e: e.force_mae_mev_a) if alone else None
        return {
            "rows": len(entries),
            "most_accurate": best.name if best else None,
            "force_mae_mev_a": best.force_mae_mev_a if best else None,
            "errors": [f"{e.name}: {e.error}" for e in entries if e.error],
        }


def compare_section(page, run: ProjectRun) -> bool:
    """The report's section with the table of every family of the committee, under its own heading (False, and
    nothing added, when the stage made no table)."""
    from mlpkit.workflows.compare.report import TABLE_HEADER, add_parity_plots, recommendation, table_rows
    from mlpkit.workflows.compare.run import Entry

    out = run.path(COMPARE_DIR)
    data = load_json(out / "compare.json")
    if not data or not data.get("entries"):
        return False
    entries = [Entry(**e) for e in data["entries"]]
    page.add_heading("Every family of the committee on the test set")
    header = [h for h in TABLE_HEADER if not h.startswith("checklist")]
    rows = [[c for h, c in zip(TABLE_HEADER, row, strict=True) if not h.startswith("checklist")]
            for row in table_rows(entries)]  # fmt: skip
    page.add_table(header, rows)
    page.add_paragraph(
        f"Each member of the final committee alone, and the committee, on the same {data.get('n_test')} test "
        f"configurations; every member was trained on the same labels. Train wall: the member's fit (the committee: "
        f"the sum). MD cost: force calls on a periodic box of {data.get('md_atoms')} atoms built from the test data, "
        "warm, median of several; memory: what the first call added (rough). Spearman: rank correlation of the "
        "per-configuration uncertainty with the true worst force error. The physics checklist of the committee is "
        "the validation section above."
    )
    for sentence in recommendation(entries):
        page.add_paragraph(sentence)
    add_parity_plots(page, entries, Path(out))
    return True
