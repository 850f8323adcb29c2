"""``mlpkit init``: a project file for a structure and a method, every default written out; and loading one.

A molecule gets the schema's defaults. A periodic structure (a box spec such as ``water-box:32``, or a file whose cell
is periodic in all three directions) gets the condensed-phase choices of ``examples/liquid-water/mlpkit.yaml``
(:data:`PERIODIC_SETTINGS`): NPT sampling driven by the reference when it is cheap, declared domain temperatures, the
stress in the fit, a BPNN cutoff for a box, NPT exploration, the molecule-only extras (random-sampling baseline,
physics checklist's normal modes) off, and NPT production with the condensed-phase properties (NVT at the box's
density when the reference is GFN2-xTB, which does not hold liquid water together at 1 bar).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from mlpkit.config.project import CONFIG_FILE, PERIODIC_STRESS_WEIGHT, ProjectConfig, structure_is_periodic
from mlpkit.config.system import SystemSection
from mlpkit.errors import InputError

#: reference methods cheap enough to drive the sampling MD of a box themselves (the example's GFN2-xTB: 1.6 s of CPU
#: per call of 16 waters); for DFT the sampling driver stays the schema's default (gfn2), only kept frames get DFT
CHEAP_DRIVERS = ("gfn2", "emt")

#: what ``mlpkit init`` writes for a periodic structure on top of the schema's defaults (docs/user-guide.md, "Liquids
#: and other periodic boxes"; the numbers are the liquid-water example's, docs/benchmarks/liquid-water.md)
PERIODIC_SETTINGS: dict[str, Any] = {
    # a liquid near room temperature: walkers explore at both, and the test set is an independent run at each
    "domain": {"temperatures": [300.0, 400.0], "test_frames": 10, "test_equilibration": 40, "test_stride": 20},
    "sampling": {
        "thermostat": "npt",  # the frames' densities vary, their stresses teach the equation of state
        "pressure": 1.0,
        "barostat_time": 250.0,  # short on purpose: a few hundred fs of sampling sweep a range of densities
        "temperature": 350.0,  # the middle of the domain
        "timestep": 0.5,  # flexible molecules' X-H stretches (~9 fs for O-H)
        "friction": 0.02,
        "every": 20,
        "equilibration": 200,  # FIRE, then 100 fs of NVT from the packed box before any frame is kept
        "n_normal_modes": 0,  # a liquid has no single minimum
    },
    # 4.5 Å: the first and second neighbours' shells of a molecular liquid; bpnn's data default for a cell (6 Å)
    # holds ~2.4x the neighbours, so each MD step costs ~2.4x
    "model": {"hyperparameters": {"cutoff": 4.5}, "fit": {"stress_weight": PERIODIC_STRESS_WEIGHT}},
    "active_learning": {
        "explore": {"ensemble": "npt", "pressure": 1.0, "barostat_time": 250.0, "timestep": 0.5},
        "baseline": {"enabled": False},  # random sampling doubles the labels and fits of whole boxes
        "physics": {"enabled": False},  # its targeted labels (normal modes around minima) are tools for molecules
    },
    "production": {
        "ensemble": "npt",  # the report gives the density at `pressure`
        "pressure": 1.0,
        "barostat_time": 1000.0,  # >= 1 ps keeps the volume of a small box from ringing
        "temperature": 300.0,
        "timestep": 0.5,
        "steps": 20000,  # 10 ps: RDFs, mean-squared displacement, VDOS
        "friction": 0.002,  # weak, so diffusion and vibrations are barely damped
        "interval": 2,
    },
}

PERIODIC_HEADER = """\
Periodic structure: written with the condensed-phase settings of examples/liquid-water/mlpkit.yaml, not a
molecule's defaults: NPT sampling at 350 K from the relaxed and equilibrated box (barostat 250 fs, 0.5 fs steps, no
normal modes), domain 300-400 K, the stress in the fit (model.fit.stress_weight), a 4.5 Å BPNN cutoff, NPT
exploration, no random-sampling baseline and no physics-checklist rounds, and 10 ps of NPT production (exploration
and production in NVT at the box's density with GFN2-xTB, whose weak hydrogen bonds boil water at 1 bar) with the
radial distribution functions, self-diffusion (finite-size corrected), density and VDOS in the report.
Production on a larger box than the training one: production.supercell [4, 4, 4] (or production.structure).
Guide: docs/user-guide.md, "Liquids and other periodic boxes"."""


def periodic_settings(method: str) -> dict[str, Any]:
    """:data:`PERIODIC_SETTINGS` for the reference ``method``: a cheap method drives the sampling itself, and the
    speed table's baseline is left out when it would be the reference again."""
    data = copy.deepcopy(PERIODIC_SETTINGS)
    name = str(method).lower()
    if name in CHEAP_DRIVERS:
        data["sampling"]["driver"] = name
    if name == "gfn2":
        data["speed"] = {"baseline": "none"}  # the baseline would be GFN2-xTB, the reference itself
        # GFN2-xTB's hydrogen bonds are too weak to hold liquid water at 1 bar (virial pressure +13 to +25 kbar at
        # 1.0 g/cm³; NPT production of the example's potential expanded the box to 0.28 g/cm³ in 10 ps,
        # docs/benchmarks/liquid-water.md): production runs at the box's density instead
        prod = data["production"]
        del prod["pressure"], prod["barostat_time"]
        prod["ensemble"] = "nvt"
        # and the walkers explore at that density too: NPT walkers followed the expanding box, and 85 of the
        # example's 110 labels went to boxes below 0.8 g/cm³ that neither the test frames nor production visit
        explore = data["active_learning"]["explore"]
        del explore["pressure"], explore["barostat_time"]
        explore["ensemble"] = "nvt"
    return data


def init_config(
    directory: str | Path,
    *,
    structure: str = "H2O",
    method: str = "pyscf",
    options: dict | None = None,
    name: str | None = None,
    force: bool = False,
) -> Path:
    """Write ``directory/mlpkit.yaml`` for ``structure`` and ``method`` with every default written out (a periodic
    structure with :func:`periodic_settings`)."""
    directory = Path(directory)
    target = directory / CONFIG_FILE
    if target.exists() and not force:
        raise InputError(f"{target} exists; pass --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "project": {"name": name or directory.resolve().name},
        "system": {"structure": structure},
        "reference": {"method": method, "options": dict(options or {})},
    }
    # a structure file given relative to the current directory must still be found from the config's directory
    spath = Path(structure).expanduser()
    if spath.exists():
        data["system"]["structure"] = str(spath.resolve())
    periodic = structure_is_periodic(
        SystemSection.model_construct(structure=data["system"]["structure"], index=0), directory.resolve()
    )
    if periodic:
        data.update(periodic_settings(method))
    cfg = ProjectConfig.from_dict(data, base_dir=directory.resolve(), where=f"mlpkit init {directory}")
    shown = (
        "Every key is shown with the value it runs with; delete what you do not change, or edit in place."
        if periodic
        else "Every key is shown with its default; delete what you do not change, or edit in place."
    )
    header = (
        f"mlpkit project: {cfg.project.name}\n"
        f"Run it with: mlpkit run {target}\n"
        f"{shown}\n"
        "Units: eV, Å, fs, K (ASE's). Full guide: docs/user-guide.md"
    )
    if periodic:
        header += "\n\n" + PERIODIC_HEADER
    return cfg.write_yaml(target, header=header)


def load_config(path: str | Path) -> ProjectConfig:
    """Shorthand for :meth:`ProjectConfig.from_yaml`."""
    return ProjectConfig.from_yaml(path)
