"""The active-learning configuration (YAML in, validated by pydantic, every default documented).

Unknown keys and bad values are refused with the key path (``explore.temperatures.0: ...``).

Defaults and where they come from
---------------------------------
* ``initial.n = 20``, ``explore`` (Langevin, 500 K, friction 0.01/fs, 1 fs, 1000 steps), ``select.top_k = 10``:
  the source material's worked water example.
* ``trust.lower = "auto"``: the quantile ``trust.lower_quantile`` (0.9) of the calibrated uncertainty on the
  validation configurations (labelled, not trained on). A configuration the committee is no less sure about
  than 90% of data it has labels for is trusted. Because calibration makes σ an estimate of the worst atomic
  force error (eV/Å), a number given here means exactly that.
* ``trust.upper = "auto"``: the RMS of the per-atom reference force magnitude of the labelled data. A
  configuration whose expected force error is as large as the forces themselves gets a prediction that
  carries no information: the walker has left the physical region (or the model has), so MD stops there and
  such frames are discarded.
* ``select.min_distance = "auto"``: half the median nearest-neighbour distance between the labelled
  training configurations in descriptor space: two picks closer than the spacing of the data we already
  have would add nearly the same information.
* ``stop``: stop when the fraction of exploration MD steps that are not trusted (σ ≥ lower; steps a walker
  did not run because it stopped early count as untrusted) stays below ``candidate_fraction`` for
  ``patience`` iterations and the test force MAE meets ``force_mae``; or at ``max_iterations`` / the label
  budget. ``candidate_fraction = 0.1``: with lower at the 90% quantile of data the model knows, an exploration
  that visits nothing new is expected to give ~10% untrusted steps.
* ``initial.selection = "spaced"`` (consecutive driver-MD frames, the source's recipe); ``"farthest_point"``
  with ``pool_factor = 10`` labels the 20 most diverse of 200 frames instead, for no extra DFT. The water
  example uses it: consecutive frames 20 fs apart are strongly correlated, and its first committee was 3.5-12x
  worse on the test set (docs/benchmarks/active-learning.md, initial-set benchmark).
* ``explore.bias = 0``: plain MD on the committee mean. A positive depth (eV) biases the walkers toward
  disagreement (``mlpkit.uncertainty.bias``); off by default: not shown to help on water (same benchmark page).
* ``physics`` (on in the project's loop, off in ``mlpkit learn`` files unless written): when the loop stops, the
  quality checklist of the committee runs and a failed check that sampling can fix (frequencies, NVE, force
  outliers, extrapolation, test > 2x training) labels ``labels_per_check = 4`` targeted configurations per check and
  round, at most ``max_rounds = 2`` rounds and ``max_labels = 20`` labels on top of ``label_budget``: enough for a
  few normal-mode displacements around each minimum without letting validation dominate the label count
  (:mod:`mlpkit.workflows.active_learning.physics`).
* ``baseline.initial = "auto"``: random sampling shares AL's initial set when that set is itself random MD
  frames, and draws its own from the same pool when AL chose its set; "random sampling" then means random
  all the way, the comparison the saving is about.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from mlpkit.config.base import _Section, _Strict, refuse_other_kind
from mlpkit.config.model import CommitteeSettings
from mlpkit.config.physics import PhysicsSettings
from mlpkit.config.sampling import Ensemble, InitialSettings, TestSettings, check_barostat
from mlpkit.config.system import ExecutionSection
from mlpkit.errors import InputError


class ExploreSettings(_Strict):
    """MD with the committee mean, from the dataset's structures."""

    temperatures: list[float] = Field([500.0], min_length=1, description="K; walkers are spread over these")
    walkers: int = Field(4, ge=1, description="walkers per temperature and iteration")
    steps: int = Field(1000, ge=1, description="MD steps per walker and iteration")
    timestep: float = Field(1.0, gt=0, le=10, description="fs")
    friction: float = Field(0.01, ge=0, description="1/fs (Langevin)")
    ensemble: Ensemble = Field("nvt", description="nvt, nve, or npt (periodic cells: walkers' densities vary)")
    pressure: float = Field(1.0, description="bar, barostat target for ensemble = npt")
    barostat_time: float = Field(1000.0, gt=0, description="fs, barostat period for ensemble = npt")
    interval: int = Field(10, ge=1, description="record a frame every `interval` steps")
    bias: float = Field(
        0.0,
        ge=0,
        description="eV, depth A of the uncertainty-driven bias (mlpkit.uncertainty.bias): walkers move on "
        "Ē + A[exp(−σ_E²/(N·bias_width²)) − 1], drawn toward configurations the committee disagrees on; 0: plain MD",
    )
    bias_width: float = Field(0.01, gt=0, description="eV per √atom, width B of that bias")
    allow_bond_breaking: bool = Field(False, description="do not stop a walker when a molecular bond breaks")

    @field_validator("temperatures")
    @classmethod
    def _positive(cls, v):
        if any(t <= 0 for t in v):
            raise ValueError("temperatures must be positive (K)")
        return v

    @model_validator(mode="after")
    def _barostat(self):
        if self.ensemble == "npt":
            check_barostat(self.pressure, self.barostat_time, self.timestep)
        return self


class TrustSettings(_Strict):
    """The trust window on the calibrated uncertainty (eV/Å, max atomic force error estimate)."""

    lower: float | Literal["auto"] = "auto"
    upper: float | Literal["auto"] = "auto"
    lower_quantile: float = Field(0.9, gt=0, lt=1, description="quantile of σ on validation data for 'auto'")
    calibrate: bool = Field(True, description="scale σ by the factor fitted on validation data")

    @model_validator(mode="after")
    def _order(self):
        for name in ("lower", "upper"):
            v = getattr(self, name)
            if v != "auto" and v <= 0:
                raise ValueError(f"{name} must be positive (eV/Å) or 'auto'")
        if self.lower != "auto" and self.upper != "auto" and self.lower >= self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        return self


class SelectSettings(_Strict):
    top_k: int = Field(
        10,
        ge=1,
        description="most configurations labelled per iteration (candidates in the trust window; while the test "
        "error is above stop's target, the most uncertain trusted configurations fill up to it)",
    )
    strategy: Literal["farthest_point", "uncertainty"] = Field(
        "farthest_point",
        description="farthest-point sampling among candidates starting from the most "
        "uncertain, or most-uncertain-first; both keep picks at least `min_distance` apart",
    )
    min_distance: float | Literal["auto"] = "auto"
    valid_fraction: float = Field(0.2, ge=0, lt=1, description="share of each labelled batch kept for validation")

    @field_validator("min_distance")
    @classmethod
    def _nonneg(cls, v):
        if v != "auto" and v < 0:
            raise ValueError("min_distance must be >= 0 or 'auto'")
        return v


class StopSettings(_Strict):
    candidate_fraction: float = Field(0.1, gt=0, le=1)
    patience: int = Field(2, ge=1, description="iterations the fraction must stay below the level")
    force_mae: float | None = Field(0.05, gt=0, description="eV/Å target on the test set (None: no target)")
    energy_mae_per_atom: float | None = Field(None, gt=0, description="eV/atom target (None: no target)")


class BaselineSettings(_Strict):
    enabled: bool = True
    label_factor: float = Field(
        2.0,
        ge=1.0,
        description="random sampling may use up to this many times AL's "
        "labels, so a saving down to 1/label_factor is measurable",
    )
    pool_factor: float = Field(3.0, ge=1.0, description="driver-MD pool size relative to the labels drawn")
    points: Literal["curve", "search"] = Field(
        "curve",
        description="'curve': train at every AL label count and beyond (the whole learning curve); 'search': "
        "train at AL's final count, then at the largest, then bisect for where random sampling reaches AL's "
        "error (same labels and answer, 2-5 committees instead of ~10)",
    )
    initial: Literal["auto", "shared", "random"] = Field(
        "auto",
        description="the baseline's initial set: 'shared': AL's own labelled initial set (measures the AL rounds "
        "alone); 'random': drawn at random from AL's initial pool (measures AL's choice of the initial set too); "
        "'auto': 'random' when AL chose its initial set (initial.selection='farthest_point'), else 'shared'",
    )


class ExecutionSettings(ExecutionSection):
    """Where the labels of ``mlpkit learn`` run (the project file's execution section), and its torch threads."""

    model_config = ConfigDict(validate_assignment=True)

    threads: int | None = Field(None, ge=1, description="torch threads for training (None: leave as is)")
    md_threads: int = Field(
        1,
        ge=1,
        description="torch threads during exploration MD: one step of a small molecule is too little work to "
        "share, and a second thread on a busy machine made steps 30x slower in our measurements",
    )


class ActiveLearningSection(_Section):
    """Active learning (source 5.4): explore with committee MD, label what the committee is unsure about,
    retrain, stop by rule; with a random-sampling baseline of the same budget. The sub-sections are the
    learn configuration's own (explore, trust, select, stop, baseline); the structure, reference method,
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
    physics: PhysicsSettings = Field(
        default_factory=PhysicsSettings, description="the physics checklist in the stopping rule"
    )


class ActiveLearningConfig(_Strict):
    """An active-learning run: see the module docstring for what each default means."""

    name: str = "active-learning"
    structure: str = Field(
        ..., description="structure file, a molecule name ASE knows (H2O), or a box of molecules (water-box:32)"
    )
    reference: dict[str, Any] = Field(
        default_factory=lambda: {"method": "pyscf"}, description="reference method spec for make_labeler"
    )
    driver: dict[str, Any] | None = Field(
        default_factory=lambda: {"method": "gfn2"},
        description="what drives the MD of the initial set, the test set and the random baseline: a cheap method "
        "{method: gfn2}, or any potential {potential: chgnet} (a pretrained name such as chgnet:r2scan, or a saved "
        "mlpkit model directory, relative to this file; other keys are load options); a bare string is either; "
        "None: the reference itself",
    )
    seed: int = 0
    max_iterations: int = Field(9, ge=1, description="exploration/label rounds at most")
    label_budget: int = Field(200, ge=2, description="reference labels at most (initial + selected, test excluded)")
    initial: InitialSettings = Field(default_factory=InitialSettings)
    explore: ExploreSettings = Field(default_factory=ExploreSettings)
    trust: TrustSettings = Field(default_factory=TrustSettings)
    select: SelectSettings = Field(default_factory=SelectSettings)
    committee: CommitteeSettings = Field(default_factory=CommitteeSettings)
    stop: StopSettings = Field(default_factory=StopSettings)
    test: TestSettings = Field(default_factory=TestSettings)
    baseline: BaselineSettings = Field(default_factory=BaselineSettings)
    physics: PhysicsSettings = Field(
        default_factory=lambda: PhysicsSettings(enabled=False),
        description="off in `mlpkit learn` files unless a physics section is written (the project's loop has it on)",
    )
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)

    @field_validator("driver", mode="before")
    @classmethod
    def _driver_spec(cls, v):
        """A bare string becomes {method: NAME} for a cheap method, {potential: NAME_OR_DIR} otherwise."""
        if isinstance(v, str):
            from mlpkit.sampling.driver import driver_spec

            return driver_spec(v)
        return v

    @field_validator("driver")
    @classmethod
    def _driver_usable(cls, v):
        if v is not None and "potential" in v:
            from mlpkit.config.sampling import _check_potential_driver

            if "method" in v:
                raise ValueError("give either 'method' (a cheap method) or 'potential', not both")
            _check_potential_driver(str(v["potential"]), what="driver")
            return v
        if v is not None and "method" not in v:
            raise ValueError(
                "needs a 'method' (a cheap method: gfn2, emt) or a 'potential' (chgnet, a model directory)"
            )
        return _method_spec(v)

    @field_validator("reference")
    @classmethod
    def _reference_spec(cls, v):
        return _method_spec(v)

    @model_validator(mode="after")
    def _budget(self):
        if self.label_budget < self.initial.n:
            raise ValueError(f"label_budget ({self.label_budget}) is smaller than initial.n ({self.initial.n})")
        if self.baseline.initial == "random" and self.initial.sampling == "rattle":
            raise ValueError("baseline.initial='random' draws from the initial pool, which sampling='rattle' lacks")
        return self

    # -- construction ----------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> ActiveLearningConfig:
        """Validate a plain dict; errors become one :class:`InputError` listing every bad key path."""
        if not isinstance(data, dict):
            raise InputError(f"{where} must be a mapping of settings, got {type(data).__name__}")
        refuse_other_kind(data, "learn", where)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InputError(_format_error(exc, where)) from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> ActiveLearningConfig:
        """Read and validate a YAML file; relative paths inside are taken relative to the file."""
        import yaml

        path = Path(path)
        if not path.exists():
            raise InputError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise InputError(f"{path} is not valid YAML: {exc}") from None
        if data is None:
            raise InputError(f"{path} is empty")
        driver = data.get("driver") if isinstance(data, dict) else None
        if isinstance(driver, (str, dict)):  # a model directory is relative to this file, also while validating
            from mlpkit.config.sampling import potential_path
            from mlpkit.sampling.driver import is_labeler_name

            if isinstance(driver, str) and not is_labeler_name(driver):
                data["driver"] = potential_path(driver, path.resolve().parent)
            elif isinstance(driver, dict) and isinstance(driver.get("potential"), str):
                data["driver"] = {**driver, "potential": potential_path(driver["potential"], path.resolve().parent)}
        cfg = cls.from_dict(data, where=str(path))
        return cfg.resolve_paths(path.parent)

    def resolve_paths(self, base: str | os.PathLike) -> ActiveLearningConfig:
        """Make relative file paths absolute against ``base`` (the directory of the YAML file)."""
        base = Path(base)

        def fix(p: str | None) -> str | None:
            if p is None:
                return None
            q = Path(p).expanduser()
            return str(q if q.is_absolute() else (base / q).resolve())

        upd = self.model_copy(deep=True)
        s = Path(self.structure).expanduser()
        from mlpkit.data.boxes import is_box_spec

        if (s.suffix or "/" in self.structure) and not is_box_spec(self.structure):  # CH3OH-box:20@0.79 is no file
            upd.structure = fix(self.structure)
        if self.driver is not None and "potential" in self.driver:
            from mlpkit.config.sampling import potential_path

            upd.driver = {**self.driver, "potential": potential_path(str(self.driver["potential"]), base)}
        upd.initial.file = fix(self.initial.file)
        upd.test.file = fix(self.test.file)
        upd.test.cache = fix(self.test.cache)
        # a missing input file must stop the run here, not after the initial set has been labelled
        for key, p in (("initial.file", upd.initial.file), ("test.file", upd.test.file)):
            if p is not None and not Path(p).is_file():
                raise InputError(f"{key}: {p} does not exist")
        return upd


def _method_spec(v: dict[str, Any] | None) -> dict[str, Any] | None:
    """ValueError (for pydantic) unless ``v`` is a labeler spec mlpkit can build."""
    if v is None:
        return v
    if "method" not in v:
        raise ValueError("needs a 'method' (pyscf, gfn2, gpaw, ase, emt)")
    from mlpkit.errors import MlpkitError
    from mlpkit.labelers import make_labeler

    try:
        make_labeler(dict(v))
    except MlpkitError as exc:
        raise ValueError(str(exc)) from exc
    return v


def _format_error(exc: ValidationError, where: str = "config") -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if msg.startswith("Value error, @"):  # "@key message": a section-level check pointing at one of its keys
            sub, _, msg = msg[len("Value error, @") :].partition(" ")
            loc = f"{loc}.{sub}" if err["loc"] else sub
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{loc}: {msg}")
    return f"invalid settings in {where}: " + "; ".join(lines)
