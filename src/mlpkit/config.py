"""One configuration for a whole mlpkit project: ``ProjectConfig`` (pydantic v2), read from YAML.

A project file has one section per stage of ``mlpkit run``::

    project     name, run directory, seed
    system      the structure (ASE molecule name or any file ASE reads)
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

import difflib
import importlib.util
import textwrap
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlpkit.active.config import BaselineSettings, ExploreSettings, SelectSettings, StopSettings, TrustSettings
from mlpkit.errors import InputError, MlpkitError
from mlpkit.execution.settings import JobqueueSettings as JobqueueSection
from mlpkit.execution.settings import target_problem
from mlpkit.training import FIT_DEFAULTS
from mlpkit.validation.settings import ValidationSettings

CONFIG_FILE = "mlpkit.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# -- sections ------------------------------------------------------------------------------------------------


class ProjectSection(_Section):
    """Name, where results go, and the seed every random choice derives from."""

    name: str = Field("mlpkit-project", min_length=1, description="a name for the project (report title)")
    run_dir: str = Field(
        "run",
        min_length=1,
        description="directory for every result (dataset, models, "
        "trajectories, report, state file); relative paths are relative to this file's directory",
    )
    seed: int = Field(0, ge=0, description="seed of every random choice (sampling, splits, training, MD)")


class SystemSection(_Section):
    """The structure to build a potential for."""

    structure: str = Field(
        "H2O",
        min_length=1,
        description="an ASE molecule name (H2O, CH3CH2OH, ...; see "
        "ase.collections.g2) or a structure file ASE reads (xyz, extxyz, cif, POSCAR, ...); "
        "relative paths are relative to this file's directory",
    )
    index: int = Field(0, description="which frame of a multi-frame structure file to start from")

    @field_validator("structure")
    @classmethod
    def _structure_exists(cls, v: str, info: ValidationInfo) -> str:
        base = Path((info.context or {}).get("base_dir", "."))
        path = Path(v).expanduser()
        path = path if path.is_absolute() else base / path
        if path.exists():
            return v
        if any(sep in v for sep in ("/", "\\")) or Path(v).suffix:
            raise ValueError(f"file {path} does not exist (relative paths are relative to the configuration file)")
        from ase.collections import g2

        if v not in g2.names:
            close = difflib.get_close_matches(v, g2.names, n=3)
            raise ValueError(
                f"{v!r} is neither a file nor an ASE molecule name"
                + (f"; did you mean {' or '.join(close)}?" if close else "")
                + " (molecule names: ase.collections.g2.names)"
            )
        return v

    vacuum: float = Field(
        5.0,
        gt=0,
        description="Å of vacuum around a molecule given by name (box for the "
        "source's 'molecule in a box' protocol; non-periodic)",
    )


class ReferenceSection(_Section):
    """The reference method that labels configurations (energies, forces, stress)."""

    method: str = Field(
        "pyscf",
        description="pyscf (DFT, default), gfn2 (GFN2-xTB via tblite), gpaw, ase (any "
        "ASE calculator), emt (toy, tests only); see docs/reference-methods.md",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword options of the method (pyscf: xc, "
        "basis, charge, spin, conv_tol, ...; ase: calculator, parameters, "
        "level_of_theory); missing ones take the method's defaults, written out here",
    )

    @field_validator("method")
    @classmethod
    def _method_installed(cls, v: str) -> str:
        _check_method(v, None, what="reference method")
        return v

    @model_validator(mode="after")
    def _options_work(self) -> ReferenceSection:
        try:
            spec = _check_method(self.method, self.options, what="reference method")
        except ValueError as exc:
            raise ValueError(f"@options {exc}") from None
        self.options = {k: v for k, v in spec.items() if k != "method"}
        return self

    def labeler(self):
        """The :class:`mlpkit.labelers.base.Labeler` this section describes."""
        from mlpkit.labelers import make_labeler

        return make_labeler(self.method, **self.options)


class SamplingSection(_Section):
    """Initial training configurations and an independent test set (the source: 20-100 initial samples)."""

    method: Literal["md", "rattle", "normal_modes"] = Field(
        "md",
        description="md: snapshots of MD at "
        "temperature; rattle: random displacements; "
        "normal_modes: normal-mode sampling at temperature",
    )
    driver: str = Field(
        "gfn2",
        description="method driving the sampling MD / normal modes: 'reference' (the "
        "reference method itself, costly), or a cheap one (gfn2, emt); only the picked frames are "
        "labelled with the reference method",
    )
    n_configs: int = Field(20, ge=2, description="initial configurations labelled for training (+validation)")
    temperature: float = Field(500.0, gt=0, description="K, temperature of the sampling MD / normal modes")
    thermostat: Literal["nve", "langevin"] = Field(
        "nve", description="nve: velocity Verlet from a Maxwell-Boltzmann start (the source's protocol); langevin: NVT"
    )
    timestep: float = Field(1.0, gt=0, le=10, description="fs")
    friction: float = Field(0.01, gt=0, description="1/fs, Langevin friction")
    every: int = Field(10, ge=1, description="MD steps between kept snapshots")
    rattle_stdev: float = Field(0.05, gt=0, description="Å, displacement spread for method = rattle")
    n_normal_modes: int = Field(
        0,
        ge=0,
        description="extra initial configurations from normal-mode sampling around the driver's minimum at "
        "temperature: hot MD holds few near-equilibrium geometries, and without them the curvature at the "
        "minimum (vibrational frequencies) is poorly learned",
    )
    n_test: int = Field(
        20,
        ge=0,
        description="test configurations from independent MD runs (other seeds), "
        "labelled and never trained on; 0 = no test set (not recommended)",
    )
    test_temperatures: list[float] = Field(
        default_factory=lambda: [500.0, 1000.0],
        min_length=1,
        description="K, the test frames are split evenly over these temperatures "
        "(Langevin), so the test covers hotter geometries than training",
    )

    @field_validator("test_temperatures")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(t <= 0 for t in v):
            raise ValueError("temperatures must be > 0 K")
        return v

    @field_validator("driver")
    @classmethod
    def _driver_installed(cls, v: str) -> str:
        if v != "reference":
            _check_method(v, None, what="sampling driver")
        return v


class ExecutionSection(_Section):
    """Where reference calculations run (Dask)."""

    workers: int = Field(
        2,
        ge=0,
        description="local Dask worker processes (one label each at a time); BLAS/OpenMP "
        "threads per worker are set so workers x threads = cores; 0 = no Dask, label in this process",
    )
    scheduler: str | None = Field(
        None, description="address of a running Dask scheduler (tcp://host:8786); overrides workers"
    )
    jobqueue: JobqueueSection | None = Field(
        None, description="start workers as batch jobs (Slurm/PBS/...) via dask-jobqueue; overrides workers"
    )

    @model_validator(mode="after")
    def _one_target(self) -> ExecutionSection:
        problem = target_problem(self.scheduler, self.jobqueue)
        if problem:
            raise ValueError(f"@{problem[0]} {problem[1]}")
        return self


class CommitteeSection(_Section):
    """The ensemble whose spread is the uncertainty (source 5.4: NNPs from different seeds / data splits)."""

    n_members: int = Field(4, ge=2, le=32, description="committee members (different seeds)")
    bootstrap: bool = Field(True, description="each member trains on a bootstrap resample of the training set")
    warm_start: bool = Field(
        True, description="active learning: start each round's members from the previous round's (False: from scratch)"
    )


class FitSection(_Section):
    """How each potential is fitted (defaults: mlpkit.training.FIT_DEFAULTS). The share of labels held out for
    early stopping and calibration is active_learning.select.valid_fraction (one split for the first committee
    and the loop)."""

    epochs: int = Field(FIT_DEFAULTS["epochs"], ge=1, description="maximum training epochs")
    force_weight: float = Field(
        FIT_DEFAULTS["force_weight"],
        ge=0,
        description="weight of the force MSE (eV²/Å²) against the per-atom energy MSE (eV²/atom²); the source "
        "warns that ignoring forces is a pitfall",
    )
    learning_rate: float = Field(
        FIT_DEFAULTS["learning_rate"],
        gt=0,
        le=1,
        description="initial Adam learning rate (the source: lower it, e.g. to 1e-4, if training does not converge)",
    )
    lr_final: float = Field(FIT_DEFAULTS["lr_final"], gt=0, le=1, description="learning rate at the last epoch")
    scheduler: Literal["exponential", "cosine", "plateau", "constant"] = Field(
        FIT_DEFAULTS["scheduler"], description="learning-rate schedule from learning_rate to lr_final"
    )
    batch_size: int = Field(FIT_DEFAULTS["batch_size"], ge=1, description="configurations per optimiser step")
    patience: int = Field(
        FIT_DEFAULTS["patience"], ge=1, description="early stopping: epochs without validation improvement"
    )
    keep: Literal["best", "last"] = Field(
        FIT_DEFAULTS["keep"],
        description="'best': weights of the best validation epoch (early stopping); 'last': all epochs, final "
        "weights of the decayed schedule (steadier when the validation share is a handful of configurations)",
    )


class ModelSection(_Section):
    """The potential family and how it is trained."""

    family: str = Field("bpnn", description="potential family (bpnn: Behler-Parrinello neural network)")
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="family hyperparameters; bpnn: cutoff (Å, 6.0), n_radial (16), n_angular (6), "
        "angular_order (3), hidden (layer widths, [64, 64]), activation (silu), dropout (0.0), dtype (float64); "
        "empty = defaults derived from the data (mlpkit.potentials.bpnn)",
    )
    committee: CommitteeSection = Field(default_factory=CommitteeSection, description="ensemble for uncertainty")
    fit: FitSection = Field(default_factory=FitSection, description="fit settings")

    @model_validator(mode="after")
    def _known_hyperparameters(self) -> ModelSection:
        if self.family == "bpnn":
            from mlpkit.potentials.bpnn import DEFAULT_HYPERPARAMETERS

            known = {*DEFAULT_HYPERPARAMETERS, "verlet_skin"}
            for key in self.hyperparameters:
                if key not in known:
                    close = difflib.get_close_matches(key, sorted(known), n=1)
                    raise ValueError(
                        f"@hyperparameters.{key} unknown bpnn hyperparameter"
                        + (f" (did you mean {close[0]}?)" if close else "")
                        + f"; known: {', '.join(sorted(known))}"
                    )
        return self

    @field_validator("hyperparameters")
    @classmethod
    def _cutoff_positive(cls, v: dict[str, Any]) -> dict[str, Any]:
        cutoff = v.get("cutoff")
        if cutoff is not None:
            if not isinstance(cutoff, (int, float)) or isinstance(cutoff, bool):
                raise ValueError(f"@cutoff must be a number of Å, got {cutoff!r}")
            if cutoff <= 0:
                raise ValueError(f"@cutoff must be > 0 Å, got {cutoff}")
        if "dropout" in v and not (isinstance(v["dropout"], (int, float)) and 0 <= v["dropout"] < 1):
            raise ValueError(f"@dropout must be in [0, 1), got {v['dropout']!r}")
        return v

    @field_validator("family")
    @classmethod
    def _family_known(cls, v: str) -> str:
        from mlpkit.potentials.registry import known_families

        # "committee" wraps members of another family (model.committee); "bpnn" is the built-in default
        known = sorted((set(known_families()) | {"bpnn"}) - {"committee"})
        if v not in known:
            raise ValueError(f"unknown model family {v!r}; known: {', '.join(known)}")
        return v


class ValidationSection(ValidationSettings):
    """The quality checklist (mlpkit validate) run on the trained potential."""

    enabled: bool = Field(True, description="run the checklist after training and after active learning")


class ActiveLearningSection(_Section):
    """Active learning (source 5.4): explore with committee MD, label what the committee is unsure about,
    retrain, stop by rule; with a random-sampling baseline of the same budget. The sub-sections are
    mlpkit.active.config's own (explore, trust, select, stop, baseline); the structure, reference method,
    initial and test data, committee and workers come from the other sections of this file."""

    enabled: bool = Field(True, description="run active learning after the first training and validation")
    max_iterations: int = Field(6, ge=1, description="exploration/label rounds at most (the source's example: 5)")
    label_budget: int = Field(
        200, ge=2, description="reference labels at most, initial ones included (test set excluded)"
    )
    explore: ExploreSettings = Field(default_factory=ExploreSettings, description="exploration MD")
    trust: TrustSettings = Field(default_factory=TrustSettings, description="trust window on the uncertainty")
    select: SelectSettings = Field(default_factory=SelectSettings, description="which candidates get labelled")
    stop: StopSettings = Field(default_factory=StopSettings, description="the stopping rule")
    baseline: BaselineSettings = Field(default_factory=BaselineSettings, description="random-sampling baseline")


class WatchdogSection(_Section):
    """Watches the committee's uncertainty (calibrated max atomic force std, eV/Å) during production MD."""

    warn: float | Literal["auto"] = Field(
        "auto",
        description="eV/Å: steps above it are saved as uncertain frames (worth labelling) and counted; auto = the "
        "lower bound of the final active-learning trust window (0.15 without active learning)",
    )
    stop: float | Literal["auto"] = Field(
        "auto",
        description="eV/Å: above it the run stops (it left the training data); auto = the upper bound of the final "
        "trust window (0.5 without active learning)",
    )

    @field_validator("warn", "stop")
    @classmethod
    def _positive(cls, v):
        if v != "auto" and v <= 0:
            raise ValueError("must be > 0 eV/Å or 'auto'")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> WatchdogSection:
        if self.warn != "auto" and self.stop != "auto" and self.warn >= self.stop:
            raise ValueError(f"@warn warn ({self.warn} eV/Å) must be below stop ({self.stop} eV/Å)")
        return self


class ProductionSection(_Section):
    """Production MD with the final potential, then properties from the trajectory."""

    enabled: bool = Field(True, description="run production MD")
    ensemble: Literal["nvt", "nve"] = Field("nvt", description="nvt: Langevin; nve: velocity Verlet")
    temperature: float = Field(300.0, gt=0, description="K (thermostat target, and the initial velocities)")
    timestep: float = Field(0.5, gt=0, le=10, description="fs")
    steps: int = Field(4000, ge=10, description="MD steps")
    friction: float = Field(0.002, gt=0, description="1/fs, Langevin friction (weak, so vibrational peaks stay sharp)")
    interval: int = Field(
        2, ge=1, description="steps between saved frames (the spectrum needs frames < 4 fs apart to see X-H stretches)"
    )
    watchdog: WatchdogSection = Field(default_factory=WatchdogSection, description="uncertainty watchdog")
    trajectory: str = Field(
        "production.traj",
        description="trajectory file in the run directory (.traj: ASE trajectory with momenta; .extxyz also works)",
    )


class SpeedSection(_Section):
    """The source's 5.1 table, measured for this system: ns/day of DFT-MD, MLP-MD and a cheap baseline."""

    enabled: bool = Field(True, description="measure the speed table")
    reference_steps: int = Field(3, ge=1, description="MD steps driven by the reference method (DFT is slow)")
    mlp_steps: int = Field(200, ge=1, description="MD steps with the trained potential")
    baseline: str = Field(
        "auto",
        description="baseline method: auto (GFN2-xTB if installed, and EMT where it "
        "knows every element), gfn2, emt, or none",
    )
    baseline_steps: int = Field(200, ge=1, description="MD steps with the baseline")
    timestep: float = Field(0.5, gt=0, description="fs, converts s/step into ns/day")

    @field_validator("baseline")
    @classmethod
    def _baseline(cls, v: str) -> str:
        if v not in ("auto", "none"):
            _check_method(v, None, what="speed baseline")
        return v


class ReportSection(_Section):
    """The HTML report."""

    title: str | None = Field(None, description="report title; null = the project name")
    file: str = Field("report.html", description="file name in the run directory")


class ProjectConfig(_Section):
    """A whole mlpkit project: structure → samples → labels → potential → validation → active learning →
    production MD → report."""

    project: ProjectSection = Field(default_factory=ProjectSection, description="name, run directory, seed")
    system: SystemSection = Field(default_factory=SystemSection, description="the structure")
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

    @model_validator(mode="after")
    def _budget(self) -> ProjectConfig:
        if self.active_learning.enabled and self.active_learning.label_budget < self.sampling.n_configs:
            raise ValueError(
                f"@active_learning.label_budget ({self.active_learning.label_budget}) is smaller than the initial "
                f"labels (sampling.n_configs = {self.sampling.n_configs})"
            )
        return self

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
        """The start structure as an ase.Atoms (molecule names get ``system.vacuum`` Å of vacuum)."""
        from mlpkit.data.structures import molecule_from_name, read_structures

        s = self.system.structure
        path = self.resolve(s)
        if path.exists():
            images = read_structures(path)
            if not -len(images) <= self.system.index < len(images):
                raise InputError(f"system.index {self.system.index} is out of range: {path} holds {len(images)} frames")
            return images[self.system.index]
        if any(sep in s for sep in ("/", "\\")) or Path(s).suffix:
            raise InputError(f"system.structure: file {path} does not exist")
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
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        try:
            cfg = cls.model_validate(data, context={"base_dir": base})
        except ValidationError as exc:
            raise InputError(format_validation_error(exc, where)) from None
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


# -- checks --------------------------------------------------------------------------------------------------

_METHOD_PACKAGES = {"pyscf": "pyscf", "gfn2": "tblite", "tblite": "tblite", "gpaw": "gpaw", "emt": "ase"}


def _check_method(method: str, options: dict | None, *, what: str) -> dict:
    """Build the labeler once (cheap: no calculation) so a missing package or a bad option fails now.

    Returns the labeler's full spec (every option, defaults included). Raises ValueError for pydantic.
    """
    from mlpkit.labelers import LABELERS, make_labeler

    name = str(method).lower()
    if name not in LABELERS:
        close = difflib.get_close_matches(name, list(LABELERS), n=2)
        raise ValueError(
            f"unknown {what} {method!r}; choose one of: {', '.join(sorted(LABELERS))}"
            + (f" (did you mean {' or '.join(close)}?)" if close else "")
        )
    package = _METHOD_PACKAGES.get(name)
    if package and importlib.util.find_spec(package) is None:
        raise ValueError(
            f"{what} {name!r} needs the Python package {package!r}, which is not installed; see "
            "docs/reference-methods.md for how to install it"
        )
    if options is None:
        return {}
    try:
        labeler = make_labeler(name, **options)
    except MlpkitError as exc:
        raise ValueError(f"{what} {name!r} cannot be used: {exc}") from None
    return labeler.spec()


def _hint(loc: tuple, err_type: str, model: type[BaseModel]) -> str | None:
    """A hint for one validation error: close key names for unknown keys, else the field's description
    (and default) of the deepest schema field on the path."""
    cls: Any = model
    info = None
    resolved = 0
    for part in loc:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            break
        fields = cls.model_fields
        if part not in fields:
            if err_type == "extra_forbidden":
                close = difflib.get_close_matches(str(part), list(fields), n=2, cutoff=0.6)
                known = ", ".join(fields)
                return (f"did you mean {' or '.join(close)}? " if close else "") + f"keys allowed here: {known}"
            break
        info = fields[part]
        resolved += 1
        cls = _model_in(info.annotation)
    if info is None:
        return None
    desc = info.description or ""
    if resolved == len(loc) and cls is None:
        default = info.get_default(call_default_factory=True)
        return f"{desc} (default: {default!r})" if desc else f"default: {default!r}"
    return desc or None


def _model_in(annotation) -> type[BaseModel] | None:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def format_validation_error(
    exc: ValidationError, where: str = "configuration", model: type[BaseModel] | None = None
) -> str:
    """One readable multi-line message: each problem as ``key.path: what is wrong`` and an indented hint."""
    model = model or ProjectConfig
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        path = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if msg.startswith("@"):  # "@sub.key message": a section-level check pointing at one of its keys
            sub, _, msg = msg[1:].partition(" ")
            loc = (*loc, *sub.split("."))
            path = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif "input" in err and err["type"] not in ("missing", "value_error") and not isinstance(err["input"], dict):
            msg = f"{msg} (got {err['input']!r})"
        lines.append(f"  {path}: {msg}")
        hint = _hint(loc, err["type"], model)
        if hint:
            lines.append(f"    hint: {hint}")
    n = len(exc.errors())
    return f"{where} has {n} problem{'s' if n != 1 else ''}:\n" + "\n".join(lines)


# -- commented YAML ------------------------------------------------------------------------------------------


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True).strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return text.removesuffix("...").strip()


def _comment(text: str, indent: str, width: int = 100) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, width=width - len(indent) - 2)]


def _emit(model: BaseModel, indent: str, out: list[str]) -> None:
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        doc = " ".join(s.strip() for s in (type(value).__doc__ or "").strip().splitlines())
        if isinstance(value, BaseModel) and doc:
            out.extend(_comment(doc, indent))  # a section: its class docstring says more than the field's
        elif info.description:
            out.extend(_comment(info.description, indent))
        sub = _model_in(info.annotation)
        if value is None and sub is not None:  # an optional section: show its keys, commented out
            example = yaml.safe_dump({name: sub().model_dump(mode="json")}, default_flow_style=False, sort_keys=False)
            out.append(f"{indent}# for example:")
            out.extend(f"{indent}#   {line}" for line in example.rstrip().splitlines())
        if isinstance(value, BaseModel):
            out.append(f"{indent}{name}:")
            _emit(value, indent + "  ", out)
        elif isinstance(value, dict) and value:
            out.append(f"{indent}{name}:")
            block = yaml.safe_dump(value, default_flow_style=False, sort_keys=False, allow_unicode=True)
            out.extend(f"{indent}  {line}" for line in block.rstrip().splitlines())
        else:
            out.append(f"{indent}{name}: {_scalar(value)}")
        if not indent:
            out.append("")


def commented_yaml(config: ProjectConfig | None = None, header: str | None = None) -> str:
    """The configuration as YAML, every key present and preceded by its description as a comment."""
    config = config or ProjectConfig()
    out: list[str] = []
    if header:
        out.extend(f"# {line}" if line else "#" for line in header.splitlines())
        out.append("")
    _emit(config, "", out)
    return "\n".join(out).rstrip() + "\n"


def init_config(
    directory: str | Path,
    *,
    structure: str = "H2O",
    method: str = "pyscf",
    options: dict | None = None,
    name: str | None = None,
    force: bool = False,
) -> Path:
    """Write ``directory/mlpkit.yaml`` for ``structure`` and ``method`` with every default written out."""
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
    cfg = ProjectConfig.from_dict(data, base_dir=directory.resolve(), where=f"mlpkit init {directory}")
    header = (
        f"mlpkit project: {cfg.project.name}\n"
        f"Run it with: mlpkit run {target}\n"
        "Every key is shown with its default; delete what you do not change, or edit in place.\n"
        "Units: eV, Å, fs, K (ASE's). Full guide: docs/user-guide.md"
    )
    return cfg.write_yaml(target, header=header)


def load_config(path: str | Path) -> ProjectConfig:
    """Shorthand for :meth:`ProjectConfig.from_yaml`."""
    return ProjectConfig.from_yaml(path)


__all__ = ["CONFIG_FILE", "ProjectConfig", "commented_yaml", "format_validation_error", "init_config", "load_config"]
