"""One configuration for a whole mlpkit project: ``ProjectConfig`` (pydantic v2), read from YAML.

A project file has one section per stage of ``mlpkit run``::

    project     name, run directory, seed
    system      the structure (ASE molecule name or any file ASE reads)
    domain      where the potential will be used (temperatures): exploration, test set and report cover it
    reference   the reference method (labeler) and its options
    sampling    the initial configurations (MD at temperature, rattling or normal modes) and the test set
    execution   where labels are computed: local Dask workers, a scheduler address, or a dask-jobqueue cluster
    model       potential family, hyperparameters, committee size and fit settings
    validation  the quality checklist's thresholds (mlpkit.validation.settings.ValidationSettings)
    active_learning   exploration, selection, stopping rule, random-sampling baseline
    production  MD with the final potential, uncertainty watchdog, trajectory
    speed       the ns/day table: reference-method MD vs MLP-MD vs a cheap baseline
    report      the HTML report

Everything is checked before any work starts: unknown keys, wrong types and impossible values are reported
together, each with its key path (``production.temperature``) and a hint, as one :class:`InputError`.
``commented_yaml()`` writes a file with every default spelled out and each key's description as a comment,
generated from this schema (so the documentation and the defaults cannot drift apart).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, model_validator

from mlpkit.config.active_learning import ActiveLearningSection
from mlpkit.config.base import _Section, refuse_other_kind
from mlpkit.config.commented import commented_text
from mlpkit.config.domain import DomainSection
from mlpkit.config.errors import format_validation_error
from mlpkit.config.model import ModelSection
from mlpkit.config.production import ProductionSection, ReportSection, SpeedSection
from mlpkit.config.sampling import SamplingSection
from mlpkit.config.system import ExecutionSection, ProjectSection, ReferenceSection, SystemSection
from mlpkit.config.validation import ValidationSection
from mlpkit.errors import InputError, MlpkitError

CONFIG_FILE = "mlpkit.yaml"
#: model.fit.stress_weight of a BPNN on a periodic structure when the file sets none: stress in the loss, so NPT
#: production has a pressure to hold (docs/benchmarks/liquid-water.md, bench/liquid_stress_weight.py)
PERIODIC_STRESS_WEIGHT = 10.0


class ProjectConfig(_Section):
    """A whole mlpkit project: structure → samples → labels → potential → validation → active learning →
    production MD → report."""

    project: ProjectSection = Field(default_factory=ProjectSection, description="name, run directory, seed")
    system: SystemSection = Field(default_factory=SystemSection, description="the structure")
    domain: DomainSection = Field(
        default_factory=DomainSection, description="where the potential will be used (docs/user-guide.md)"
    )
    reference: ReferenceSection = Field(default_factory=ReferenceSection, description="the reference method")
    sampling: SamplingSection = Field(default_factory=SamplingSection, description="initial data and test set")
    execution: ExecutionSection = Field(default_factory=ExecutionSection, description="where labels are computed")
    model: ModelSection = Field(default_factory=ModelSection, description="the potential and its training")
    validation: ValidationSection = Field(default_factory=ValidationSection, description="quality checklist")
    active_learning: ActiveLearningSection = Field(
        default_factory=ActiveLearningSection, description="the active-learning loop"
    )
    production: ProductionSection = Field(default_factory=ProductionSection, description="production MD")
    speed: SpeedSection = Field(default_factory=SpeedSection, description="ns/day table")
    report: ReportSection = Field(default_factory=ReportSection, description="the HTML report")

    @model_validator(mode="before")
    @classmethod
    def _periodic_stress_default(cls, data: Any, info: ValidationInfo) -> Any:
        """A BPNN on a periodic structure fits the stress by default (model.fit.stress_weight =
        :data:`PERIODIC_STRESS_WEIGHT` unless written): a potential that never saw a stress gives a barostat nonsense.
        Molecules, other families and a weight written in the file are left as they are."""
        if not isinstance(data, dict):
            return data
        system, model = data.get("system") or {}, data.get("model") or {}
        if not isinstance(system, dict) or not isinstance(model, dict) or model.get("family", "bpnn") != "bpnn":
            return data
        fit = model.get("fit") or {}
        if not isinstance(fit, dict) or "stress_weight" in fit:
            return data
        members = (model.get("committee") or {}).get("members") if isinstance(model.get("committee"), dict) else None
        if any(not isinstance(m, dict) or m.get("family", "bpnn") != "bpnn" for m in members or []):
            return data  # a mixed committee: mace (and others) refuse a stress weight
        try:
            periodic = structure_is_periodic(
                SystemSection.model_construct(
                    structure=str(system.get("structure", "H2O")), index=int(system.get("index", 0))
                ),
                Path((info.context or {}).get("base_dir", ".")),
            )
        except (MlpkitError, OSError, ValueError, TypeError):
            return data  # the section's own validation reports what is wrong with the structure
        if not periodic:
            return data
        return {**data, "model": {**model, "fit": {**fit, "stress_weight": PERIODIC_STRESS_WEIGHT}}}

    @model_validator(mode="after")
    def _budget(self) -> ProjectConfig:
        if self.active_learning.enabled and self.active_learning.label_budget < self.sampling.n_configs:
            raise ValueError(
                f"@active_learning.label_budget ({self.active_learning.label_budget}) is smaller than the initial "
                f"labels (sampling.n_configs = {self.sampling.n_configs})"
            )
        return self

    @model_validator(mode="after")
    def _npt_needs_a_cell(self, info: ValidationInfo) -> ProjectConfig:
        npt = [k for k, on in (("sampling.thermostat", self.sampling.thermostat == "npt"),
                               ("production.ensemble", self.production.enabled and self.production.ensemble == "npt"),
                               ("active_learning.explore.ensemble",
                                self.active_learning.enabled and self.active_learning.explore.ensemble == "npt"))
               if on]  # fmt: skip
        if npt and not structure_is_periodic(self.system, Path((info.context or {}).get("base_dir", "."))):
            raise ValueError(
                f"@{npt[0]} npt needs a periodic cell (a barostat scales the cell), but system.structure "
                f"{self.system.structure!r} is not periodic: use a box spec (water-box:32) or a periodic file, or "
                "nvt"
            )
        return self

    @model_validator(mode="after")
    def _production_system(self, info: ValidationInfo) -> ProjectConfig:
        """production.structure / production.supercell: the potential knows only the training structure's elements,
        and a molecule's potential is no model of a periodic system (nor the reverse)."""
        p = self.production
        if not (p.enabled and p.new_system):
            return self
        from mlpkit.data.structures import structure_elements

        base = Path((info.context or {}).get("base_dir", "."))
        try:
            trained, periodic = structure_elements(self.system.structure, base, self.system.index)
        except MlpkitError:
            return self  # the system section's own check reports what is wrong with the structure
        if p.structure is not None:
            try:
                elements, prod_periodic = structure_elements(p.structure, base)
            except MlpkitError as exc:
                raise ValueError(f"@production.structure {exc}") from None
            unknown = sorted(elements - trained)
            if unknown:
                raise ValueError(
                    f"@production.structure {p.structure!r} holds {', '.join(unknown)}, which the training "
                    f"structure {self.system.structure!r} ({', '.join(sorted(trained))}) has not: the potential "
                    "knows only the elements it was trained on"
                )
            if prod_periodic != periodic:
                kinds = ("a periodic cell", "a molecule")
                raise ValueError(
                    f"@production.structure {p.structure!r} is {kinds[not prod_periodic]} but the training structure "
                    f"{self.system.structure!r} is {kinds[not periodic]}: a potential trained on one is no model of "
                    "the other"
                )
        if p.supercell is not None and not periodic:
            raise ValueError(
                f"@production.supercell repeats a periodic cell, but {self.system.structure!r} is a molecule"
            )
        return self

    @property
    def domain_temperatures(self) -> list[float]:
        """K, ascending: the declared domain, or (not declared) the sampling and exploration temperatures."""
        if self.domain.temperatures is not None:
            return list(self.domain.temperatures)
        return sorted({float(self.sampling.temperature), *map(float, self.active_learning.explore.temperatures)})

    def exploration_temperatures(self) -> list[float]:
        """K, ascending: where the active-learning walkers run. A declared domain puts walkers at each of its
        temperatures, plus the explore.temperatures written explicitly in the file (its default is replaced)."""
        explore = self.active_learning.explore
        if self.domain.temperatures is None:
            return list(explore.temperatures)
        extra = explore.temperatures if "temperatures" in explore.model_fields_set else []
        return sorted({*map(float, self.domain.temperatures), *map(float, extra)})

    def jobqueue_config(self) -> dict | None:
        """The execution.jobqueue section as mlpkit.execution's cluster configuration (type, jobs, options)."""
        jq = self.execution.jobqueue
        return None if jq is None else jq.cluster_config()

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: Path | None = PrivateAttr(default=None)

    # -- paths ---------------------------------------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        """Directory relative paths are resolved against (the config file's directory)."""
        return self._base_dir

    @property
    def source(self) -> Path | None:
        """The YAML file this configuration was read from, if any."""
        return self._source

    def resolve(self, path: str | Path) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self._base_dir / p)

    @property
    def run_dir(self) -> Path:
        return self.resolve(self.project.run_dir)

    @property
    def database_url(self) -> str:
        """The dataset store: ``<run_dir>/dataset.db`` (shared with the active-learning loop, so no label is
        computed twice)."""
        return str(self.run_dir / "dataset.db")

    def structure_atoms(self):
        """The start structure as an ase.Atoms: a file's frame ``system.index``; a box spec ``NAME-box:N[@DENSITY]``
        packed with ``project.seed`` (periodic; the same box every time); a molecule name with ``system.vacuum`` Å of
        vacuum (non-periodic)."""
        return self._build_structure(self.system.structure, self.system.index, "system.structure")

    def production_structure_atoms(self):
        """``production.structure`` as built (frame 0 of a file; a box spec packed with ``project.seed``), or None
        when production runs on the training start. Not relaxed, not replicated (the production stage does both)."""
        s = self.production.structure
        return None if s is None else self._build_structure(s, 0, "production.structure")

    def _build_structure(self, s: str, index: int, key: str):
        from mlpkit.data.boxes import is_box_spec
        from mlpkit.data.structures import molecule_from_name, read_structures, structure_from_name

        path = self.resolve(s)
        if path.exists():
            images = read_structures(path)
            if not -len(images) <= index < len(images):
                raise InputError(f"{key}: frame {index} is out of range: {path} holds {len(images)} frames")
            return images[index]
        if is_box_spec(s):
            return structure_from_name(s, seed=self.project.seed)
        if any(sep in s for sep in ("/", "\\")) or Path(s).suffix:
            raise InputError(f"{key}: file {path} does not exist")
        return molecule_from_name(s, vacuum=self.system.vacuum)

    # -- I/O -------------------------------------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, path: str | Path) -> ProjectConfig:
        """Read and validate a project file; every problem is reported at once, with its key path and a hint."""
        path = Path(path)
        if not path.exists():
            raise InputError(f"configuration file {path} does not exist (create one with: mlpkit init DIR)")
        if path.is_dir():
            if (path / CONFIG_FILE).exists():
                path = path / CONFIG_FILE
            else:
                raise InputError(f"{path} is a directory without {CONFIG_FILE}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise InputError(f"{path} is not valid YAML:\n{exc}") from exc
        cfg = cls.from_dict(data if data is not None else {}, base_dir=path.resolve().parent, where=str(path))
        cfg._source = path.resolve()
        return cfg

    @classmethod
    def from_dict(cls, data: Any, *, base_dir: str | Path | None = None, where: str = "configuration") -> ProjectConfig:
        if not isinstance(data, dict):
            raise InputError(
                f"{where} must be a mapping of sections (project:, system:, ...), got {type(data).__name__}"
            )
        refuse_other_kind(data, "project", where)
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        try:
            cfg = cls.model_validate(data, context={"base_dir": base})
        except ValidationError as exc:
            raise InputError(format_validation_error(exc, where, cls)) from None
        cfg._base_dir = base
        return cfg

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def write_yaml(self, path: str | Path, header: str | None = None) -> Path:
        """Write the configuration with every key's description as a comment (see :func:`commented_yaml`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(commented_yaml(self, header=header))
        return path


def structure_is_periodic(system, base_dir: Path) -> bool:
    """Whether ``system.structure`` is periodic in all three directions (a box spec is; a molecule name is not; a
    file is read), without packing a box."""
    from mlpkit.data.boxes import is_box_spec

    s = system.structure
    path = Path(s).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if path.exists():
        from mlpkit.data.structures import read_structures

        images = read_structures(path)
        return bool(-len(images) <= system.index < len(images) and images[system.index].pbc.all())
    return is_box_spec(s)


def commented_yaml(config: ProjectConfig | None = None, header: str | None = None) -> str:
    """The configuration as YAML, every key present and preceded by its description as a comment."""
    return commented_text(config or ProjectConfig(), header=header)
