"""The sections after training: production MD (with its uncertainty watchdog), the speed table and the
report."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from mlpkit.config.base import _check_method, _Section
from mlpkit.config.sampling import Ensemble, check_barostat


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

    density: list[float] | Literal["auto"] | None = Field(
        "auto",
        description="g/cm³ [low, high]: a periodic box whose density leaves it stops the run (in a dilute box the "
        "committee agrees on small forces, so the uncertainty does not see a box boiling away); auto = the range of "
        "the training boxes' densities widened by density_margin, under a barostat (production.ensemble npt) only; "
        "null: no density check",
    )
    density_margin: float = Field(
        0.1,
        ge=0,
        le=1,
        description="fraction by which auto widens the training densities' range on both sides (a small box's "
        "density fluctuates by percents: 32 Cu atoms at 900 K by 1.5 % (1 σ), and a few training boxes do not "
        "sample those tails)",
    )

    @field_validator("warn", "stop")
    @classmethod
    def _positive(cls, v):
        if v != "auto" and v <= 0:
            raise ValueError("must be > 0 eV/Å or 'auto'")
        return v

    @field_validator("density")
    @classmethod
    def _density(cls, v):
        if isinstance(v, list) and (len(v) != 2 or not 0 < v[0] < v[1]):
            raise ValueError(f"a density range is [low, high] g/cm³ with 0 < low < high, got {v}")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> WatchdogSection:
        if self.warn != "auto" and self.stop != "auto" and self.warn >= self.stop:
            raise ValueError(f"@warn warn ({self.warn} eV/Å) must be below stop ({self.stop} eV/Å)")
        return self


class ProductionSection(_Section):
    """Production MD with the final potential, then properties from the trajectory."""

    enabled: bool = Field(True, description="run production MD")
    ensemble: Ensemble = Field(
        "nvt",
        description="nvt: Langevin; nve: velocity Verlet; npt (periodic cells only): Langevin + barostat at "
        "`pressure`, and the report gives the density",
    )
    pressure: float = Field(1.0, description="bar, barostat target for ensemble = npt (1 GPa = 10,000 bar)")
    barostat_time: float = Field(1000.0, gt=0, description="fs, barostat period for ensemble = npt")
    temperature: float = Field(300.0, gt=0, description="K (thermostat target, and the initial velocities)")
    timestep: float = Field(0.5, gt=0, le=10, description="fs")
    steps: int = Field(4000, ge=10, description="MD steps")
    friction: float = Field(0.002, gt=0, description="1/fs, Langevin friction (weak, so vibrational peaks stay sharp)")
    interval: int = Field(
        2, ge=1, description="steps between saved frames (the spectrum needs frames < 4 fs apart to see X-H stretches)"
    )
    watchdog: WatchdogSection = Field(default_factory=WatchdogSection, description="uncertainty watchdog")
    segment_steps: int = Field(
        100_000,
        ge=0,
        description="a longer run goes in segments of this many steps (rounded to a multiple of `interval`), each "
        "kept in production/segments/ when it finishes, so a killed run continues from its last finished segment "
        "(the Langevin noise is reseeded per segment; the trajectory file is written at the end); 0: one segment",
    )
    trajectory: str = Field(
        "production.traj",
        description="trajectory file in the run directory (.traj: ASE trajectory with momenta; .extxyz also works)",
    )
    structure: str | None = Field(
        None,
        description="production on another system than the training one: a box spec (water-box:1000, 3,000 atoms; "
        "packed with project.seed) or a structure file (relative to this file; frame 0), relaxed (FIRE, at most 50 "
        "steps) and run sampling.equilibration steps of NVT with the final potential before production; its "
        "elements must be among the training structure's, and periodic or not like it. null: the training start "
        "(the sample stage's equilibrated box, or the molecule)",
    )
    supercell: list[int] | None = Field(
        None,
        description="[n1, n2, n3]: production on the start (`structure`, or the equilibrated training box) repeated "
        "n1 x n2 x n3 times along its cell vectors, then sampling.equilibration steps of NVT with the final potential "
        "so the copies decorrelate ([4, 4, 4] of water-box:16: 3,072 atoms); periodic structures only",
    )
    viscosity: float = Field(
        0.89e-3,
        gt=0,
        description="Pa·s, shear viscosity of the liquid for the finite-size correction of the diffusion coefficient "
        "of a periodic box (Yeh-Hummer; water at 25 °C: 0.89e-3)",
    )

    @field_validator("supercell")
    @classmethod
    def _supercell(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) != 3 or any(n < 1 for n in v)):
            raise ValueError(f"a supercell is three repeats >= 1 along the cell vectors, e.g. [4, 4, 4]; got {v}")
        return v

    @property
    def new_system(self) -> bool:
        """Whether production runs on another system than the training start (``structure`` or ``supercell``)."""
        return self.structure is not None or self.supercell is not None

    @model_validator(mode="after")
    def _barostat(self) -> ProductionSection:
        if self.ensemble == "npt":
            check_barostat(self.pressure, self.barostat_time, self.timestep)
        return self


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
