"""``mlpkit compare``: the same data for every entry, every column measured, the page renders, failures isolated."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlpkit.potentials import register_family, unregister_family
from mlpkit.testing import labelled_water
from mlpkit.workflows.compare import compare, md_box
from toy_family import ToyPotential


@pytest.fixture(autouse=True, scope="module")
def _toy():
    register_family(ToyPotential)
    yield
    unregister_family("toy")


def test_md_box_from_a_molecule_is_periodic_and_big_enough():
    box = md_box(labelled_water(2), 100)
    assert box.pbc.all() and len(box) >= 100 and len(box) % 3 == 0
    d = box.get_all_distances(mic=True)
    np.fill_diagonal(d, np.inf)
    assert d.min() > 0.8  # copies do not overlap


def test_md_cost_times_fewer_calls_of_a_slow_model():
    """A model whose one force call outlasts the timing budget is timed once after the warm-up, not five times."""
    import time

    from mlpkit.workflows.compare.run import md_cost

    train = labelled_water(10)
    toy = ToyPotential.from_data(train)
    toy.fit(train)
    calls = []
    predict = toy.predict

    def slow(images, **kw):
        calls.append(1)
        time.sleep(0.05)
        return predict(images, **kw)

    toy.predict = slow
    box = md_box(train, 30)
    us, _ = md_cost(toy, box, steps=5, budget_s=0.01)
    assert len(calls) == 2 and us >= 0.05 * 1e6 / len(box)  # warm-up + one timed call
    calls.clear()
    md_cost(toy, box, steps=5, budget_s=100.0)
    assert len(calls) == 6


def test_compare_trains_loads_and_tabulates(tmp_path):
    train, test = labelled_water(30), labelled_water(12, temperature=700.0, seed=3)
    saved = tmp_path / "saved-toy"
    pre = ToyPotential.from_data(train)
    pre.fit(train)
    pre.save(saved)
    settings = {"bpnn": {"hyperparameters": {"hidden": [8], "n_radial": 6, "n_angular": 2}, "fit": {"epochs": 20}}}
    entries = compare(train, test, tmp_path / "out", families=["toy", "bpnn", "nosuchfamily"], models=[str(saved)],
                      settings=settings, md_atoms=60, run_checklist=False)  # fmt: skip
    by_name = {e.name: e for e in entries}
    assert set(by_name) == {"toy", "bpnn", "nosuchfamily", "saved-toy"}
    assert "unknown model family" in by_name["nosuchfamily"].error
    for name in ("toy", "bpnn", "saved-toy"):
        e = by_name[name]
        assert e.error is None and np.isfinite(e.force_mae_mev_a) and e.md_us_per_atom_step > 0 and e.md_atoms >= 60
    assert by_name["toy"].train_seconds is not None and by_name["saved-toy"].train_seconds is None
    # the saved model and the one trained here are the same model on the same data: the same numbers
    assert by_name["saved-toy"].force_mae_mev_a == pytest.approx(by_name["toy"].force_mae_mev_a)
    assert by_name["toy"].uncertainty == "variance" and by_name["toy"].uncertainty_spearman is not None
    assert by_name["bpnn"].uncertainty == "none" and by_name["bpnn"].uncertainty_spearman is None
    data = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert len(data["entries"]) == 4 and data["n_test"] == 12
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Most accurate on this test set" in html and "Parity plots" in html and html.count("<img") == 6
    assert (tmp_path / "out" / "models" / "bpnn" / "model.json").exists()


def test_recommendation_follows_the_numbers():
    from mlpkit.workflows.compare.report import recommendation
    from mlpkit.workflows.compare.run import Entry

    a = Entry("a", "x", "trained", 1.0, 5.0, 50.0, 3.0, 10.0, 20.0, 300, None, "variance", 0.8)
    b = Entry("b", "y", "trained", 1.0, 9.0, 90.0, 30.0, 1.0, 2.0, 300, None, "none", None)
    text = " ".join(recommendation([a, b]))
    assert "Most accurate on this test set: a" in text and "Fastest MD: b" in text
    assert "Quickest to train: b" in text and "a (variance, Spearman 0.80)" in text
    assert "b (30 eV/Å)" in text  # a model with wild forces is named


def test_checklist_column(tmp_path):
    train, test = labelled_water(20), labelled_water(6, seed=5)
    [entry] = compare(train, test, tmp_path, families=["toy"], md_atoms=0, run_checklist=True)
    assert entry.checklist and sum(entry.checklist.values()) >= 5


def test_compare_page_renders_in_chromium(tmp_path):
    """The compare page in headless Chromium: the table is there and every parity plot decodes."""
    import html as html_lib
    import re

    from test_validation_browser import CHROMIUM, PROBE, _chromium

    if CHROMIUM is None:
        pytest.skip("needs headless Chromium: install Debian's package with `apt-get install -y chromium`")
    train, test = labelled_water(15), labelled_water(6, seed=7)
    compare(train, test, tmp_path / "out", families=["toy"], md_atoms=0, run_checklist=False)
    probe = tmp_path / "probe.html"
    probe.write_text((tmp_path / "out" / "report.html").read_text().replace("</body>", PROBE + "\n</body>"))
    res = _chromium(["--dump-dom", "--virtual-time-budget=10000", probe.as_uri()], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout, re.S)
    assert match, "the probe script did not run"
    images = json.loads(html_lib.unescape(match.group(1)))
    assert len(images) == 2 and all(w > 100 and h > 100 and done for _, w, h, done in images)
    assert "F MAE (meV/Å)" in res.stdout and "Recommendation" in res.stdout
