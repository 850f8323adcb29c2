"""How configurations are sampled before any model exists: the project's sampling section (initial set and
test set of ``mlpkit run``), and the initial set and test set of ``mlpkit learn``; with the thermostat and
ensemble names every MD setting of both files shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from mlpkit.config.base import _check_method, _Section, _Strict

#: MD ensemble of exploration and production: 'nvt' (Langevin), 'nve' (velocity Verlet) or 'npt' (periodic cells:
#: Langevin + barostat)
Ensemble = Literal["nvt", "nve", "npt"]
#: thermostat of sampling MD: an :data:`Ensemble`, or 'langevin' (the same as 'nvt'; the project file's spelling);
#: 'npt' needs a periodic cell (the learn file's initial and test runs then hold 1 bar with a 1000 fs barostat)
Thermostat = Literal["nvt", "langevin", "nve", "npt"]
#: bar, the largest |pressure| a barostat accepts (1 GPa = 10,000 bar; beyond this a liquid's box is no model)
MAX_PRESSURE_BAR = 1.0e6


def check_barostat(pressure: float, barostat_time: float, timestep: float) -> None:
    """ValueError (for pydantic) unless ``pressure`` (bar) is finite and within ±:data:`MAX_PRESSURE_BAR` and the
    barostat period ``barostat_time`` (fs) spans at least 20 timesteps (``timestep`` fs): a shorter period lets the
    cell ring faster than the integrator resolves (docs/benchmarks/liquid-water.md)."""
    import math

    if not math.isfinite(pressure) or abs(pressure) > MAX_PRESSURE_BAR:
        raise ValueError(f"@pressure must be a finite pressure in bar within ±{MAX_PRESSURE_BAR:g}, got {pressure}")
    if not barostat_time >= 20 * timestep:
        raise ValueError(
            f"@barostat_time ({barostat_time:g} fs) must be at least 20 timesteps ({20 * timestep:g} fs); 1000 fs or "
            "more keeps the volume of a small box from ringing"
        )


def md_ensemble(thermostat: str) -> str:
    """The :func:`mlpkit.md.dynamics.run_md` ensemble of a :data:`Thermostat` ('langevin' → 'nvt')."""
    return "nvt" if thermostat == "langevin" else thermostat


def sampling_thermostat(thermostat: str) -> str:
    """The :func:`mlpkit.sampling.md_snapshots` thermostat of a :data:`Thermostat` ('nvt' → 'langevin')."""
    return "langevin" if thermostat == "nvt" else thermostat


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
        description="what drives the sampling MD / normal modes (and, in active learning, the driver MD of the "
        "baseline): 'reference' (the reference method itself, costly), a cheap method (gfn2, emt), or any "
        "potential: a pretrained name (chgnet, chgnet:r2scan) or a saved mlpkit model directory (relative to this "
        "file); no reference calculation is spent on sampling, only the picked frames are labelled",
    )
    n_configs: int = Field(
        14,
        ge=2,
        description="initial MD configurations labelled for training (+validation); with n_normal_modes the source's "
        "20 initial labels",
    )
    temperature: float = Field(500.0, gt=0, description="K, temperature of the sampling MD / normal modes")
    thermostat: Thermostat = Field(
        "langevin",
        description="langevin (NVT): frames that sample the temperature's ensemble; nve: velocity Verlet from a "
        "Maxwell-Boltzmann start (the source's protocol, whose frames of one short trajectory are too alike to train "
        "on: docs/benchmarks/pipeline.md); npt (periodic cells only): Langevin plus a barostat at `pressure`, so the "
        "frames' densities vary and their stresses teach the potential the equation of state",
    )
    timestep: float = Field(1.0, gt=0, le=10, description="fs")
    friction: float = Field(0.01, gt=0, description="1/fs, Langevin friction")
    pressure: float = Field(1.0, description="bar, barostat target for thermostat = npt (1 GPa = 10,000 bar)")
    barostat_time: float = Field(
        1000.0,
        gt=0,
        description="fs, barostat period for thermostat = npt (>= 1000 fs for boxes of tens of molecules: a shorter "
        "one makes the volume ring)",
    )
    equilibration: int = Field(
        200,
        ge=0,
        description="periodic systems only: steps of driver NVT at `temperature` (after a short FIRE relaxation that "
        "removes the packed box's close contacts) before any frame is kept, so sampling starts from a liquid and a "
        "barostat does not overshoot; molecules start from their structure as before",
    )
    every: int = Field(25, ge=1, description="MD steps between kept snapshots (25 fs apart: less correlated frames)")
    rattle_stdev: float = Field(0.05, gt=0, description="Å, displacement spread for method = rattle")
    n_normal_modes: int = Field(
        6,
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

    @model_validator(mode="after")
    def _barostat(self) -> SamplingSection:
        if self.thermostat == "npt":
            check_barostat(self.pressure, self.barostat_time, self.timestep)
        return self

    @field_validator("test_temperatures")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(t <= 0 for t in v):
            raise ValueError("temperatures must be > 0 K")
        return v

    @field_validator("driver")
    @classmethod
    def _driver_installed(cls, v: str, info: ValidationInfo) -> str:
        if v == "reference":
            return v
        from mlpkit.sampling.driver import is_labeler_name

        if is_labeler_name(v):
            _check_method(v, None, what="sampling driver")
            return v
        base = Path((info.context or {}).get("base_dir", "."))
        path = potential_path(v, base)
        if ("/" in v or v.startswith(".")) and not Path(path).exists() and ":" not in v:
            where = (base / v).resolve()
            raise ValueError(f"sampling driver: no saved model at {where} (a path is relative to this file)")
        _check_potential_driver(path, what="sampling driver")
        return v

    def driver_spec(self, base_dir: str | Path) -> dict[str, Any] | None:
        """The driver as a spec for :func:`mlpkit.sampling.driver.make_driver` (None: the reference itself); a
        model directory is made absolute against ``base_dir`` (the project file's directory)."""
        if self.driver == "reference":
            return None
        from mlpkit.sampling.driver import is_labeler_name

        if is_labeler_name(self.driver):
            return {"method": self.driver}
        return {"potential": potential_path(self.driver, Path(base_dir))}


def potential_path(spec: str, base_dir: Path) -> str:
    """``spec`` made absolute against ``base_dir`` when it names a path there; else as given (a pretrained name
    such as ``chgnet:r2scan``, or an absolute path)."""
    p = Path(spec).expanduser()
    if p.is_absolute():
        return str(p)
    q = base_dir / p
    return str(q.resolve()) if q.exists() else spec


def _check_potential_driver(spec: str, *, what: str) -> None:
    """ValueError (for pydantic) unless ``spec`` is a loadable potential; loads no weights."""
    from mlpkit.errors import MlpkitError
    from mlpkit.sampling.driver import check_driver

    try:
        check_driver({"potential": spec})
    except MlpkitError as exc:
        raise ValueError(f"{what}: {exc}") from None


class InitialSettings(_Strict):
    """How the first labelled configurations are made."""

    n: int = Field(20, ge=2, description="number of initial configurations labelled with the reference")
    sampling: Literal["md", "rattle", "file"] = Field(
        "md", description="'md': driver MD at `temperature`; 'rattle': Gaussian displacements; 'file': `file`"
    )
    file: str | None = Field(None, description="structures (extxyz, ...) to pick the initial set from")
    temperature: float = Field(500.0, gt=0, description="K, for sampling='md'")
    thermostat: Thermostat = "nvt"
    equilibration: int = Field(200, ge=0, description="driver MD steps discarded before the first frame")
    steps_between: int = Field(20, ge=1, description="driver MD steps between two initial frames")
    rattle_stdev: float = Field(0.05, gt=0, description="Å, for sampling='rattle'")
    selection: Literal["spaced", "farthest_point"] = Field(
        "spaced",
        description="'spaced': for sampling='md', n frames `steps_between` steps apart (for 'file': a seeded random "
        "draw); 'farthest_point': make a pool of `pool_factor` x n unlabelled frames (driver MD, or the file) and "
        "label the n most diverse (farthest-point in descriptor space). No label is spent on the choice. The "
        "random baseline then draws its own initial n at random from the same pool",
    )
    pool_factor: int = Field(10, ge=2, description="pool size / n for selection='farthest_point'")

    @model_validator(mode="after")
    def _file_needed(self):
        if self.sampling == "file" and not self.file:
            raise ValueError("sampling='file' needs `file`")
        if self.selection == "farthest_point" and self.sampling == "rattle":
            raise ValueError("selection='farthest_point' needs sampling='md' or 'file' (a pool to choose from)")
        return self


class TestSettings(_Strict):
    """A fixed held-out test set, labelled once. Either a labelled `file`, or driver MD at `temperatures`."""

    __test__ = False  # not a pytest class

    file: str | None = Field(None, description="labelled extxyz used as the test set as is")
    method: str | None = Field(
        None,
        description="the method string recorded in `file` when it names the run's reference level of theory "
        "differently (e.g. 'pyscf-2.14:PBE/def2-svp'); frames of any other method are refused",
    )
    cache: str | None = Field(
        None, description="where the generated, labelled test set is kept and reused (default: RUN_DIR/test-set.extxyz)"
    )
    temperatures: list[float] = Field([500.0, 1000.0], min_length=1)
    n_per_temperature: int = Field(25, ge=1)
    thermostat: Thermostat = "nvt"
    equilibration: int = Field(200, ge=0)
    steps_between: int = Field(20, ge=1)
    seed: int = Field(1_000_003, description="independent of the run's seed: an independent MD run")
