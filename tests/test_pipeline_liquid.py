"""`mlpkit run` end to end on a tiny periodic box: a 32-atom copper cell with EMT as reference and driver (cheap and
physical, so the fitted potential runs), NPT sampling from the equilibrated cell, stress in the fit by default, NPT
production, and the condensed-phase properties (RDF, diffusion with its finite-size correction, density, VDOS) in
production.json, summary.json and the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.io import read, write

CONFIG = {
    "project": {"name": "tiny-copper-npt", "run_dir": "run", "seed": 0},
    "system": {"structure": "cu.extxyz"},
    "domain": {"temperatures": [600.0, 900.0], "test_frames": 3, "test_equilibration": 20, "test_stride": 10},
    "reference": {"method": "emt"},
    "sampling": {
        "driver": "emt",
        "n_configs": 10,
        "temperature": 900.0,
        "thermostat": "npt",
        "pressure": 1.0,
        "barostat_time": 200.0,
        "timestep": 2.0,
        "every": 10,
        "equilibration": 20,
    },
    "execution": {"workers": 0},
    "model": {
        "family": "bpnn",
        "hyperparameters": {"cutoff": 4.0, "hidden": [8], "n_radial": 6, "n_angular": 2},
        "committee": {"n_members": 2},
        "fit": {"epochs": 40, "patience": 40, "batch_size": 4},
    },
    "validation": {"nve_steps": 50, "invariance_configs": 1, "gradient_configs": 1},
    "active_learning": {
        "max_iterations": 1,
        "label_budget": 14,
        "explore": {
            "walkers": 1,
            "steps": 40,
            "interval": 5,
            "timestep": 2.0,
            "ensemble": "npt",
            "barostat_time": 100.0,
        },
        "select": {"top_k": 2},
        "baseline": {"enabled": False},
        "physics": {"enabled": False},
    },
    "production": {
        "ensemble": "npt",
        "temperature": 900.0,
        "pressure": 1.0,
        "barostat_time": 200.0,
        "timestep": 2.0,
        "steps": 60,
        "interval": 2,
        "watchdog": {"warn": 1.0, "stop": 10.0},
    },
    "speed": {"enabled": False},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from mlpkit.workflows.project.runner import run_project

    work = tmp_path_factory.mktemp("copper")
    write(work / "cu.extxyz", bulk("Cu", cubic=True).repeat(2))
    (work / "mlpkit.yaml").write_text(yaml.safe_dump(CONFIG))
    summary = run_project(work / "mlpkit.yaml", progress=False)
    return work / "run", summary


def test_the_whole_loop_runs_on_a_periodic_cell(finished):
    run_dir, summary = finished
    assert summary["complete"], summary["stages"]
    as_run = yaml.safe_load((run_dir / "mlpkit.yaml").read_text())
    assert as_run["model"]["fit"]["stress_weight"] > 0  # a BPNN on a periodic cell fits the stress by default


def test_sampling_starts_from_the_equilibrated_cell_and_varies_the_volume(finished):
    run_dir, _ = finished
    start = read(run_dir / "configs" / "start.extxyz")
    assert start.pbc.all() and len(start) == 32
    state = json.loads((run_dir / "pipeline-state.json").read_text())
    sample = state["steps"]["sample"]["result"]
    assert "FIRE" in sample["equilibration"] and "NVT 20 steps" in sample["equilibration"]
    initial = read(run_dir / "configs" / "initial.extxyz", index=":")
    assert len(initial) == 10  # no normal modes of a periodic cell
    volumes = np.array([a.get_volume() for a in initial])
    assert np.ptp(volumes) > 1e-3 * volumes.mean()  # NPT: the barostat moved the cell
    assert all(a.info["sampling"].endswith("npt-1bar") for a in initial)


def test_active_learning_starts_from_the_equilibrated_cell_and_explores_in_npt(finished):
    run_dir, _ = finished
    config = json.loads((run_dir / "config.json").read_text())
    assert config["structure"] == str(run_dir / "configs" / "start.extxyz")
    assert config["explore"]["ensemble"] == "npt" and config["explore"]["barostat_time"] == 100.0
    explored = read(run_dir / "iter-000" / "explored.extxyz", index=":")
    volumes = np.array([a.get_volume() for a in explored])
    assert np.ptp(volumes) > 1e-3 * volumes.mean() and all("density" in a.info for a in explored)


def test_labels_carry_the_stress(finished):
    from mlpkit.data import Dataset

    run_dir, _ = finished
    frames = Dataset(run_dir / "dataset.db").to_atoms(method="emt", split="train")
    stresses = np.array([a.get_stress(voigt=True) for a in frames])
    assert np.all(np.isfinite(stresses)) and np.any(np.abs(stresses) > 1e-4)


def test_production_reports_the_condensed_phase_properties(finished):
    run_dir, summary = finished
    prod = json.loads((run_dir / "production" / "production.json").read_text())
    props = prod["properties"]
    assert prod["n_frames"] >= 10 and props["kind"] == "condensed"
    peaks = {r["pair"]: r for r in props["rdf"]}
    assert peaks["Cu-Cu"]["first_peak_A"] == pytest.approx(2.55, abs=0.2)  # fcc Cu nearest neighbours, 2.55 Å
    assert peaks["Cu-Cu"]["first_peak_height"] > 1.5
    d = props["diffusion"]
    assert d["element"] == "Cu" and d["yeh_hummer_correction_cm2_per_s"] > 0
    assert d["D_infinite_cm2_per_s"] == pytest.approx(d["D_pbc_cm2_per_s"] + d["yeh_hummer_correction_cm2_per_s"])
    assert 7.0 < props["density"]["mean_g_per_cm3"] < 10.0  # EMT copper near 8.9 g/cm³; an NPT run, so a density
    # under a barostat the watchdog also guards the density: the training boxes' range widened by 10 %
    lo, hi = prod["watchdog"]["density_g_per_cm3"]
    assert prod["watchdog"]["density_from"].endswith("training boxes ± 10%") and 6.0 < lo < hi < 11.0
    assert not prod["stopped_because"]
    assert props["vdos"]["peaks_cm-1"]
    curves = json.loads((run_dir / "production" / "properties" / "rdf.json").read_text())
    assert set(curves) == {"all", "Cu-Cu"} and len(curves["Cu-Cu"]["r_A"]) == len(curves["Cu-Cu"]["g"])
    liquid = summary["liquid"]
    assert liquid["rdf_first_peak_A_height"]["Cu-Cu"][0] == peaks["Cu-Cu"]["first_peak_A"]
    assert liquid["density_g_per_cm3"]["mean"] == props["density"]["mean_g_per_cm3"]
    assert json.loads((run_dir / "summary.json").read_text())["liquid"] == json.loads(json.dumps(liquid))
    html = (run_dir / "report.html").read_text()
    for text in ("RDF pair", "Yeh-Hummer", "density (NPT)", "VDOS peaks", "at 1 bar"):
        assert text in html, text
    assert html.count("data:image/png") >= 6  # md.png, RDF, MSD, density, VDOS and the validation's figures


def _rerun_with(finished, tmp_path, production: dict):
    """The finished project copied to ``tmp_path``, its production section updated with ``production`` and run
    again: (run directory, stage records before, stage records after, summary)."""
    import copy
    import shutil

    from mlpkit.workflows.project.runner import run_project

    run_dir, _ = finished
    work = tmp_path / "copper"
    shutil.copytree(run_dir.parent, work)
    before = json.loads((work / "run" / "pipeline-state.json").read_text())["steps"]
    config = copy.deepcopy(CONFIG)
    config["production"].update(production)
    (work / "mlpkit.yaml").write_text(yaml.safe_dump(config))
    summary = run_project(work / "mlpkit.yaml", progress=False)
    after = json.loads((work / "run" / "pipeline-state.json").read_text())["steps"]
    return work / "run", before, after, summary


def test_production_runs_on_a_supercell_of_the_equilibrated_cell(finished, tmp_path):
    run_dir, before, after, summary = _rerun_with(finished, tmp_path, {"supercell": [2, 1, 1], "steps": 20})
    for stage in ("sample", "label", "train", "validate", "learn"):  # only production and later stages rerun
        assert after[stage]["finished"] == before[stage]["finished"], stage
    prod = after["production"]["result"]
    system = prod["system"]
    assert system["atoms"] == 64 and system["source"] == "2x1x1 supercell of the equilibrated training start"
    assert "FIRE 0 steps" in system["equilibration"] and "NVT 20 steps at 900 K" in system["equilibration"]
    cell = read(run_dir / "configs" / "start.extxyz").cell.lengths()
    start = read(run_dir / "production" / "start.extxyz")
    assert len(start) == 64 and np.allclose(start.cell.lengths(), cell * [2, 1, 1])
    assert prod["steps_done"] == 20 and not prod["stopped_because"] and prod["us_per_atom_step"] > 0
    assert len(read(prod["trajectory"], index=-1)) == 64  # the MD ran on the larger system
    assert prod["properties"]["kind"] == "condensed" and prod["properties"]["rdf_frames"] == prod["n_frames"]
    html = (run_dir / "report.html").read_text()
    assert "64 atoms (Cu64), 2x1x1 supercell of the equilibrated training start" in html and "µs/atom/step" in html
    row = next(r for r in summary["stages"] if r["stage"] == "production")
    assert row["result"].startswith("64 atoms, 20/20 steps")


def test_production_runs_on_a_given_structure_relaxed_with_the_potential(finished, tmp_path):
    cell = bulk("Cu", cubic=True).repeat(2)
    cell.rattle(0.05, seed=1)
    tmp_path.mkdir(exist_ok=True)
    write(tmp_path / "cu-rattled.extxyz", cell)
    _, _, after, _ = _rerun_with(
        finished, tmp_path, {"structure": str(tmp_path / "cu-rattled.extxyz"), "supercell": [1, 1, 2], "steps": 20}
    )
    system = after["production"]["result"]["system"]
    assert (
        system["atoms"] == 64
        and system["source"].startswith("1x1x2 supercell of ")
        and "cu-rattled" in system["source"]
    )
    assert system["equilibration"].startswith("FIRE ")  # a built structure is relaxed first
    assert len(read(after["production"]["result"]["trajectory"], index=-1)) == 64


def test_production_stops_when_the_box_leaves_the_training_densities(finished, tmp_path):
    run_dir, _ = finished
    rho = json.loads((run_dir / "production" / "production.json").read_text())["properties"]["density"]
    high = 1.5 * rho["mean_g_per_cm3"]  # a range the box is far below: the first step stops the run
    _, _, after, _ = _rerun_with(finished, tmp_path, {"steps": 20, "watchdog": {"density": [high, 2 * high]}})
    prod = after["production"]["result"]
    assert prod["stopped_because"].startswith("density ") and "left the range" in prod["stopped_because"]
    assert prod["steps_done"] == 1 and prod["watchdog"]["density_from"] == "configuration"


def test_a_killed_production_continues_from_its_last_segment(finished, tmp_path, monkeypatch):
    """Production in segments (production.segment_steps): killed in its third segment, `mlpkit run` again keeps the
    two finished ones, although the supercell start is equilibrated afresh in the new run."""
    from mlpkit.workflows.project import production_segments
    from mlpkit.workflows.project.runner import run_project

    real, calls = production_segments.run_md, []

    def killed_in_the_third_segment(*args, **kwargs):
        calls.append(kwargs["steps"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(production_segments, "run_md", killed_in_the_third_segment)
    with pytest.raises(KeyboardInterrupt):
        _rerun_with(finished, tmp_path, {"supercell": [2, 1, 1], "steps": 40, "segment_steps": 10})
    segments = tmp_path / "copper" / "run" / "production" / "segments"
    assert sorted(p.name for p in segments.glob("*.npz")) == ["segment-0000.npz", "segment-0001.npz"]
    monkeypatch.setattr(production_segments, "run_md", real)
    run_project(tmp_path / "copper" / "mlpkit.yaml", progress=False)
    prod = json.loads((tmp_path / "copper" / "run" / "production" / "production.json").read_text())
    assert prod["segments_resumed"] == 2 and prod["steps_done"] == 40 and not prod["stopped_because"]
    assert prod["n_frames"] == 20 and len(read(prod["trajectory"], index=":")) == 20
