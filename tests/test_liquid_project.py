"""A project on a periodic box of molecules: box specs in the project file (built with the project's seed, checked by
`mlpkit check`), NPT settings of sampling and production (bad values and non-periodic structures refused with the key
path), the sample stage's equilibrated start, and the condensed-phase properties of production in the report and
summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlpkit.config import ProjectConfig
from mlpkit.errors import InputError


def _config(tmp_path: Path, text: str) -> ProjectConfig:
    f = tmp_path / "mlpkit.yaml"
    f.write_text(text)
    return ProjectConfig.from_yaml(f)


def _problem(tmp_path: Path, text: str) -> str:
    with pytest.raises(InputError) as info:
        _config(tmp_path, text)
    return str(info.value)


def test_a_box_spec_is_the_start_structure_placed_with_the_project_seed(tmp_path):
    cfg = _config(tmp_path, "project: {seed: 3}\nsystem: {structure: 'water-box:8@0.9'}\nreference: {method: gfn2}\n")
    atoms = cfg.structure_atoms()
    again = cfg.structure_atoms()
    other = _config(tmp_path, "project: {seed: 4}\nsystem: {structure: 'water-box:8@0.9'}\nreference: {method: gfn2}\n")
    assert len(atoms) == 24 and atoms.pbc.all()
    assert atoms.get_chemical_formula() == "H16O8"
    assert atoms.info["density"] == pytest.approx(0.9, rel=1e-6)
    assert np.allclose(atoms.positions, again.positions)  # the same box every time
    assert not np.allclose(atoms.positions, other.structure_atoms().positions)  # the seed places the molecules


def test_bad_box_specs_are_refused_with_the_key(tmp_path):
    msg = _problem(tmp_path, "system: {structure: 'water-box:8@-1'}\nreference: {method: gfn2}\n")
    assert "system.structure" in msg and "density" in msg
    msg = _problem(tmp_path, "system: {structure: 'unobtainium-box:8'}\nreference: {method: gfn2}\n")
    assert "system.structure" in msg and "not an ASE molecule name" in msg


def test_check_packs_the_box_and_names_it(tmp_path):
    from typer.testing import CliRunner

    from mlpkit.cli import _register, app

    _register()
    f = tmp_path / "mlpkit.yaml"
    f.write_text("system: {structure: 'water-box:4'}\nreference: {method: gfn2}\n")
    res = CliRunner().invoke(app, ["check", str(f)])
    assert res.exit_code == 0, res.output
    assert "water-box:4: 12 atoms, periodic" in res.output and "1.000 g/cm³" in res.output
    # a density no packing reaches fails at check time, not after the run started
    f.write_text("system: {structure: 'water-box:8@9.0'}\nreference: {method: gfn2}\n")
    res = CliRunner().invoke(app, ["check", str(f)])
    assert isinstance(res.exception, InputError) and "could not place" in str(res.exception)


def test_npt_settings_are_checked(tmp_path):
    box = "system: {structure: 'water-box:4'}\nreference: {method: gfn2}\n"
    cfg = _config(tmp_path, box + "sampling: {thermostat: npt, pressure: 1000, barostat_time: 500}\n")
    assert (cfg.sampling.thermostat, cfg.sampling.pressure, cfg.sampling.barostat_time) == ("npt", 1000.0, 500.0)
    msg = _problem(tmp_path, box + "sampling: {thermostat: npt, barostat_time: 5, timestep: 1.0}\n")
    assert "sampling.barostat_time" in msg and "20 timesteps" in msg
    msg = _problem(tmp_path, box + "production: {ensemble: npt, pressure: .inf}\n")
    assert "production.pressure" in msg and "finite" in msg
    msg = _problem(tmp_path, box + "production: {ensemble: npt, barostat_time: -1}\n")
    assert "production.barostat_time" in msg
    msg = _problem(tmp_path, box + "active_learning: {explore: {ensemble: npt, barostat_time: 10, timestep: 1}}\n")
    assert "active_learning.explore.barostat_time" in msg
    msg = _problem(tmp_path, box + "sampling: {thermostat: nph}\n")
    assert "sampling.thermostat" in msg


@pytest.mark.parametrize(
    "section, key",
    [
        ("sampling: {thermostat: npt}", "sampling.thermostat"),
        ("production: {ensemble: npt}", "production.ensemble"),
        ("active_learning: {explore: {ensemble: npt}}", "active_learning.explore.ensemble"),
    ],
)
def test_npt_is_refused_for_a_molecule(tmp_path, section, key):
    msg = _problem(tmp_path, f"system: {{structure: H2O}}\nreference: {{method: gfn2}}\n{section}\n")
    assert key in msg and "periodic" in msg
    # a periodic file is periodic, a molecule file is not
    from ase.build import bulk
    from ase.io import write

    write(tmp_path / "cu.extxyz", bulk("Cu", cubic=True))
    _config(tmp_path, f"system: {{structure: cu.extxyz}}\nreference: {{method: emt}}\n{section}\n")


def test_new_settings_at_their_defaults_keep_earlier_fingerprints(tmp_path):
    from mlpkit.workflows.project.runner import stage_fingerprints

    plain = _config(tmp_path, "reference: {method: gfn2}\n")
    spelled = _config(
        tmp_path,
        "reference: {method: gfn2}\nsampling: {pressure: 1.0, barostat_time: 1000.0, equilibration: 200}\n"
        "production: {pressure: 1.0, barostat_time: 1000.0, viscosity: 0.00089}\n",
    )
    changed = _config(tmp_path, "reference: {method: gfn2}\nproduction: {viscosity: 0.0005}\n")
    assert stage_fingerprints(plain) == stage_fingerprints(spelled)
    assert stage_fingerprints(plain)["production"] != stage_fingerprints(changed)["production"]
    assert stage_fingerprints(plain)["learn"] == stage_fingerprints(changed)["learn"]


def test_init_writes_a_periodic_project_that_fits_the_stress(tmp_path):
    from mlpkit.config import init_config

    path = init_config(tmp_path / "liquid", structure="water-box:8", method="gfn2")
    cfg = ProjectConfig.from_yaml(path)
    assert cfg.system.structure == "water-box:8" and cfg.model.fit["stress_weight"] == 10.0
    assert ProjectConfig.from_yaml(path).to_dict() == cfg.to_dict()  # the written file reads back the same
    molecule = ProjectConfig.from_yaml(init_config(tmp_path / "mol", structure="H2O", method="gfn2"))
    assert molecule.model.fit["stress_weight"] == 0.0  # molecules have no stress to fit


def test_the_report_quotes_water_experiments_only_for_water():
    from mlpkit.config.production import ProductionSection
    from mlpkit.workflows.project.report_liquid import liquid_section, liquid_summary

    class Page:
        def __init__(self):
            self.text = []

        def add_table(self, header, rows):
            self.text.append(" ".join(map(str, header + [c for r in rows for c in r])))

        def add_paragraph(self, text):
            self.text.append(text)

    def props(pairs):
        rdf = [{"pair": p, "first_peak_A": 2.8, "first_peak_height": 2.5} for p in pairs]
        diffusion = {"element": "O", "D_pbc_cm2_per_s": 1.5e-5, "yeh_hummer_correction_cm2_per_s": 0.7e-5,
                     "D_infinite_cm2_per_s": 2.2e-5, "box_length_A": 7.8, "viscosity_Pa_s": 8.9e-4,
                     "temperature_K": 300.0, "fit_range_fs": [200.0, 600.0]}  # fmt: skip
        return {"kind": "condensed", "rdf": rdf, "diffusion": diffusion}

    water, copper = Page(), Page()
    liquid_section(water, props(["all", "O-O", "O-H", "H-H"]), ProductionSection(ensemble="nvt"))
    liquid_section(copper, props(["all", "Cu-Cu"]), ProductionSection(ensemble="nvt"))
    assert "Skinner" in " ".join(water.text) and "2.3e-5" in " ".join(water.text)
    assert "Skinner" not in " ".join(copper.text) and "2.3e-5" not in " ".join(copper.text)
    assert "no density" in " ".join(copper.text)  # a fixed cell says why there is no density
    summary = liquid_summary(props(["all", "O-O"]))
    assert summary["rdf_first_peak_A_height"]["O-O"] == [2.8, 2.5]
    assert summary["diffusion_cm2_per_s"]["infinite_box"] == 2.2e-5 and "density_g_per_cm3" not in summary
