"""`mlpkit run`'s compare stage: a committee of several families gets the compare table of each family alone (and the
committee) on the project's test set, in the report; a one-family committee skips it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import mlpkit.workflows.project.compare as stage
from mlpkit.data.records import reference_results
from mlpkit.uncertainty.model_spec import ModelSpec, fit_model
from mlpkit.validation.html import HtmlReport


@dataclass
class _Run:
    """What the stage uses of a ProjectRun: the final model, the test labels and the run directory."""

    model: object
    test: list
    run_dir: Path
    said: list = field(default_factory=list)

    def potential(self, which: str):
        assert which == "final"
        return self.model

    def labelled(self, split: str):
        assert split == "test"
        return self.test

    def path(self, *parts: str) -> Path:
        return self.run_dir.joinpath(*parts)

    def say(self, text: str) -> None:
        self.said.append(text)


@pytest.fixture(scope="module")
def mixed(_water_frames_cached):
    spec = ModelSpec(family="mtp", committee={"n_members": 2, "members": [{"family": "mtp"}, {"family": "gap"}]})
    return fit_model(spec, list(_water_frames_cached[0:50:2]), seed=0)


def test_each_family_alone_and_the_committee_in_one_table(mixed, _water_frames_cached, tmp_path, monkeypatch):
    monkeypatch.setattr(stage, "MD_ATOMS", 30)
    test = list(_water_frames_cached[100:130])
    run = _Run(mixed, test, tmp_path)
    result = stage.Compare().run(run)
    data = stage.load_json(tmp_path / "compare" / "compare.json")
    rows = {e["name"]: e for e in data["entries"]}
    assert list(rows) == ["mtp", "gap", stage.COMMITTEE_ROW]
    # each row is that model's own error on the test set, measured here independently
    _, f_ref = reference_results(test)
    for member, name in zip(mixed.members, ("mtp", "gap"), strict=True):
        pred = member.predict(test)
        mae = 1000 * np.mean(np.abs(np.concatenate(pred.forces) - np.concatenate(f_ref)))
        assert rows[name]["force_mae_mev_a"] == pytest.approx(mae, rel=1e-9)
        assert rows[name]["family"] == name
        assert rows[name]["train_seconds"] == pytest.approx(member.metadata["fit_seconds"])
        assert rows[name]["md_us_per_atom_step"] > 0 and rows[name]["md_atoms"] >= 30
    assert rows["gap"]["uncertainty"] == "variance" and rows["gap"]["uncertainty_spearman"] is not None
    assert rows[stage.COMMITTEE_ROW]["uncertainty"] == "committee"
    assert rows[stage.COMMITTEE_ROW]["train_seconds"] == pytest.approx(
        rows["mtp"]["train_seconds"] + rows["gap"]["train_seconds"]
    )
    best = min(("mtp", "gap"), key=lambda n: rows[n]["force_mae_mev_a"])
    assert result["most_accurate"] == best and result["rows"] == 3

    page = HtmlReport("t")
    assert stage.compare_section(page, run)
    html = page.write(tmp_path / "r.html").read_text()
    assert "Every family of the committee on the test set" in html
    assert f"{rows['mtp']['force_mae_mev_a']:.3g}" in html and "Most accurate on this test set" in html
    assert html.count("<img") == 6  # energy and force parity plots of the three rows


def test_a_one_family_committee_skips_the_stage(_water_frames_cached, tmp_path):
    spec = ModelSpec(family="mtp", committee={"n_members": 2})
    model = fit_model(spec, list(_water_frames_cached[0:30:3]), seed=0)
    run = _Run(model, list(_water_frames_cached[100:105]), tmp_path)
    # the table of an earlier, mixed model of the same run directory
    (tmp_path / "compare").mkdir()
    (tmp_path / "compare" / "compare.json").write_text('{"entries": [{"name": "gap"}], "n_test": 5}')
    assert "one family (mtp)" in stage.Compare().run(run)["skipped"]
    assert not (tmp_path / "compare" / "compare.json").exists()
    assert not stage.compare_section(HtmlReport("t"), run)


def test_member_names_number_repeated_families():
    assert stage.member_names(["bpnn", "mtp", "bpnn", "gap", "bpnn"]) == ["bpnn", "mtp", "bpnn-2", "gap", "bpnn-3"]
