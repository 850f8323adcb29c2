"""`mlpkit init` on a periodic structure writes the condensed-phase settings of the liquid-water example (and a
molecule keeps the schema's defaults); `production.structure` / `production.supercell` are checked against the
training structure (elements, molecule vs periodic cell) and leave earlier projects' fingerprints alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from ase.build import bulk
from ase.io import write

from mlpkit.config import ProjectConfig, init_config
from mlpkit.config.init import PERIODIC_HEADER
from mlpkit.config.project import commented_yaml
from mlpkit.errors import InputError


def _periodic_choices(cfg: ProjectConfig, driver: str, production: str = "npt", explore: str = "npt") -> None:
    """The liquid example's choices that init writes for a periodic structure."""
    assert cfg.domain.temperatures == [300.0, 400.0]
    assert cfg.sampling.thermostat == "npt" and cfg.sampling.driver == driver
    assert cfg.sampling.equilibration > 0 and cfg.sampling.n_normal_modes == 0 and cfg.sampling.timestep == 0.5
    assert cfg.model.family == "bpnn" and cfg.model.hyperparameters["cutoff"] == 4.5
    assert cfg.model.fit["stress_weight"] == 10.0
    al = cfg.active_learning
    assert al.explore.ensemble == explore and not al.baseline.enabled and not al.physics.enabled
    assert cfg.production.ensemble == production
    assert cfg.production.structure is None and cfg.production.supercell is None


def test_init_on_a_box_spec_writes_the_condensed_phase_settings(tmp_path):
    path = init_config(tmp_path / "liquid", structure="water-box:32", method="gfn2")
    text = path.read_text()
    cfg = ProjectConfig.from_yaml(path)  # loads and validates
    # GFN2-xTB does not hold liquid water together at 1 bar: exploration and production at the packed density
    _periodic_choices(cfg, driver="gfn2", production="nvt", explore="nvt")
    assert cfg.speed.baseline == "none"  # the baseline would be GFN2-xTB, the reference itself
    assert PERIODIC_HEADER.splitlines()[0] in text and "with the value it runs with" in text
    # every key is still documented: the comment of a changed key is the schema's
    assert "# nvt, nve, or npt (periodic cells: walkers' densities vary)\n    ensemble: nvt" in text
    assert ProjectConfig.from_yaml(path).to_dict() == cfg.to_dict()


def test_init_on_a_periodic_cell_file_writes_the_condensed_phase_settings(tmp_path):
    write(tmp_path / "cu.extxyz", bulk("Cu", cubic=True).repeat(2))
    cfg = ProjectConfig.from_yaml(init_config(tmp_path / "cu", structure=str(tmp_path / "cu.extxyz"), method="emt"))
    _periodic_choices(cfg, driver="emt")  # a cheap reference drives the sampling itself, NPT walkers explore
    assert cfg.speed.baseline == "auto"


def test_init_on_a_molecule_writes_the_schema_defaults_unchanged(tmp_path):
    path = init_config(tmp_path / "water", structure="H2O", method="gfn2")
    cfg = ProjectConfig.from_dict({"project": {"name": "water"}, "system": {"structure": "H2O"},
                                   "reference": {"method": "gfn2", "options": {}}})  # fmt: skip
    header = (
        "mlpkit project: water\n"
        f"Run it with: mlpkit run {path}\n"
        "Every key is shown with its default; delete what you do not change, or edit in place.\n"
        "Units: eV, Å, fs, K (ASE's). Full guide: docs/user-guide.md"
    )
    assert path.read_text() == commented_yaml(cfg, header=header)  # what init wrote before periodic settings
    mol = ProjectConfig.from_yaml(path)
    assert mol.sampling.thermostat == "langevin" and mol.domain.temperatures is None
    assert mol.production.ensemble == "nvt" and mol.active_learning.baseline.enabled
    assert mol.model.hyperparameters == {} and mol.model.fit["stress_weight"] == 0.0


def _load(tmp_path: Path, text: str) -> ProjectConfig:
    (tmp_path / "mlpkit.yaml").write_text(text)
    return ProjectConfig.from_yaml(tmp_path / "mlpkit.yaml")


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(InputError) as info:
        _load(tmp_path, text)
    return str(info.value)


BOX = "system: {structure: 'water-box:8'}\nreference: {method: gfn2}\n"


def test_a_production_system_is_accepted_for_the_training_elements(tmp_path):
    cfg = _load(tmp_path, BOX + "production: {structure: 'water-box:1000', supercell: [1, 1, 2]}\n")
    assert cfg.production.new_system and cfg.production.supercell == [1, 1, 2]
    assert len(cfg.production_structure_atoms()) == 3000  # packed with the same builder
    write(tmp_path / "cu.extxyz", bulk("Cu", cubic=True))
    write(tmp_path / "cu-big.extxyz", bulk("Cu", cubic=True).repeat(3))
    cu = "system: {structure: cu.extxyz}\nreference: {method: emt}\nproduction: {structure: cu-big.extxyz}\n"
    assert len(_load(tmp_path, cu).production_structure_atoms()) == 108


def test_a_production_system_with_other_elements_or_kind_is_refused(tmp_path):
    problem = _refused(tmp_path, BOX + "production: {structure: 'CH3OH-box:100'}\n")
    assert "production.structure" in problem and "holds C" in problem and "trained on" in problem
    problem = _refused(tmp_path, BOX + "production: {structure: H2O}\n")
    assert "production.structure" in problem and "is a molecule" in problem and "periodic cell" in problem
    problem = _refused(
        tmp_path, "system: {structure: H2O}\nreference: {method: gfn2}\nproduction: {structure: 'water-box:10'}\n"
    )
    assert "production.structure" in problem and "is a periodic cell" in problem
    problem = _refused(
        tmp_path, "system: {structure: H2O}\nreference: {method: gfn2}\nproduction: {supercell: [2, 2, 2]}\n"
    )
    assert "production.supercell" in problem and "molecule" in problem
    problem = _refused(tmp_path, BOX + "production: {supercell: [2, 2]}\n")
    assert "production.supercell" in problem and "three repeats" in problem
    problem = _refused(tmp_path, BOX + "production: {structure: missing.extxyz}\n")
    assert "production.structure" in problem and "does not exist" in problem


def test_the_production_system_keys_keep_earlier_fingerprints(tmp_path):
    from mlpkit.workflows.project.runner import stage_fingerprints

    plain = stage_fingerprints(_load(tmp_path, BOX))
    spelled = stage_fingerprints(
        _load(
            tmp_path,
            BOX + "production: {structure: null, supercell: null, watchdog: {density: auto, density_margin: 0.1}}\n",
        )
    )
    bigger = stage_fingerprints(_load(tmp_path, BOX + "production: {supercell: [2, 2, 2]}\n"))
    assert plain == spelled  # an earlier project directory resumes
    assert bigger["production"] != plain["production"] and bigger["learn"] == plain["learn"]


def test_the_rdfs_of_a_large_box_use_a_stride_of_frames():
    from mlpkit.data.boxes import box_from_spec
    from mlpkit.md.liquid import rdf_stride

    small, large = box_from_spec("water-box:16"), box_from_spec("water-box:1000")
    assert rdf_stride([small] * 10_000) == 1  # the example's 10 ps: every frame
    stride = rdf_stride([large] * 10_000)
    assert 300 < stride < 600 and 15 <= len(range(0, 10_000, stride)) <= 35


def test_the_liquid_example_differs_from_init_only_where_it_writes_a_key(tmp_path):
    """The example's header says every key it does not write takes the value `mlpkit init DIR --structure
    water-box:16 --method gfn2` writes: so every setting where the two differ is written in the example."""
    import yaml

    example = Path(__file__).parents[1] / "examples" / "liquid-water" / "mlpkit.yaml"
    written = yaml.safe_load(example.read_text())
    ours = ProjectConfig.from_yaml(example).to_dict()
    init = ProjectConfig.from_yaml(init_config(tmp_path / "liquid", structure="water-box:16", method="gfn2")).to_dict()

    def differing(a, b, path=()):
        if isinstance(a, dict) and isinstance(b, dict):
            for key in set(a) | set(b):
                yield from differing(a.get(key), b.get(key), (*path, key))
        elif a != b:
            yield path

    def is_written(path):
        node = written
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return False
            node = node[key]
        return True

    unwritten = [".".join(p) for p in differing(ours, init) if not is_written(p) and p[:2] != ("project", "name")]
    assert unwritten == []
