"""The declared domain: where the user says the potential will be used, and what that drives.

Today a domain is a list of temperatures (K). Declaring it changes three things (docs/user-guide.md, "Declared
domain"):

* exploration: the active-learning walkers run at every declared temperature (the hottest included), besides any
  ``active_learning.explore.temperatures`` written explicitly;
* the test set: independent, equilibrated Langevin runs of the sampling driver at every declared temperature,
  ``test_frames`` frames each, ``test_stride`` steps apart, labelled with the reference method (it replaces
  ``sampling.n_test`` / ``sampling.test_temperatures``);
* the report: force and energy errors per temperature, with each temperature's worst frames.

Not declared (``temperatures: null``, the default), the run keeps the behaviour of earlier versions: its domain is
the sampling temperature plus the exploration temperatures, the test set is ``sampling.n_test`` frames over
``sampling.test_temperatures``, and the report still splits the test errors by temperature.

Pressures and compositions are the next axes of a domain: they will be further lists in this section, each
driving exploration, test set and report the same way (one test run per point of the declared grid).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from mlpkit.config.base import _Section


class DomainSection(_Section):
    """Where the potential will be used: exploration, the test set and the report cover it."""

    temperatures: list[float] | None = Field(
        None,
        description="K, the temperatures the potential will be used at (e.g. [300, 1000]); exploration walkers run "
        "at each, the test set is sampled at each, the report gives errors per temperature. null: not declared "
        "(the sampling temperature and active_learning.explore.temperatures; the test set of sampling.n_test)",
    )
    test_frames: int = Field(
        50,
        ge=1,
        description="test frames per declared temperature (from one independent Langevin run each; enough to see "
        "the tails of the error distribution)",
    )
    test_equilibration: int = Field(
        1000,
        ge=0,
        description="driver MD steps discarded at the start of each test run (the Maxwell-Boltzmann start is "
        "not yet an equilibrium structure)",
    )
    test_stride: int = Field(
        20,
        ge=1,
        description="driver MD steps between two test frames (20 x 0.5 fs = 10 fs: about one O-H period, so "
        "consecutive frames are not copies of each other)",
    )
    test_timestep: float = Field(0.5, gt=0, le=10, description="fs, timestep of the test runs")
    test_friction: float = Field(0.01, gt=0, description="1/fs, Langevin friction of the test runs")
    worst_frames: int = Field(3, ge=0, description="worst test frames listed per temperature in the report")

    @field_validator("temperatures")
    @classmethod
    def _temperatures(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("declare at least one temperature (K), or null for none")
        if any(t <= 0 for t in v):
            raise ValueError(f"temperatures must be > 0 K, got {v}")
        if len(set(v)) != len(v):
            raise ValueError(f"temperatures are listed twice: {v}")
        return sorted(float(t) for t in v)

    @property
    def declared(self) -> bool:
        return self.temperatures is not None
