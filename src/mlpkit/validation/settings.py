"""Thresholds and knobs of the validation checklist, with the source material's defaults.

Every threshold of :func:`mlpkit.validation.validate` lives here, so a project config (YAML) or the
command line can change it; the defaults are the quality checklist of the source material where it
gives a number (training errors, 2x test/train, 10 eV/Å) and measured, stated choices elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mlpkit.errors import InputError


class ValidationSettings(BaseModel):
    """What the checks measure and where they draw the line. Units in each field's description."""

    model_config = ConfigDict(extra="forbid")

    # 1. errors ---------------------------------------------------------------------------------------
    train_energy_mae_max: float = Field(10.0, gt=0, description="training energy MAE bar, meV/atom (source: 10)")
    train_forces_mae_max: float = Field(0.1, gt=0, description="training force MAE bar, eV/Å (source: 0.1)")
    test_train_ratio_max: float = Field(
        2.0, ge=1, description="test error may be at most this times the training error (source: 2x, no overfitting)"
    )
    ratio_floor_energy: float = Field(
        0.5,
        ge=0,
        description="meV/atom: test energy MAEs below this pass the ratio "
        "test whatever the ratio (a 0.02 vs 0.05 meV/atom 'overfit' means nothing)",
    )
    ratio_floor_forces: float = Field(0.01, ge=0, description="eV/Å: the same floor for force MAEs")
    batch_size: int = Field(64, ge=1, description="configurations per predict call")

    # 3. NVE ------------------------------------------------------------------------------------------
    nve: bool = Field(True, description="run the NVE energy-conservation check")
    nve_steps: int = Field(2000, ge=10, description="velocity-Verlet steps")
    nve_timestep: float = Field(0.5, gt=0, description="fs")
    nve_temperature: float = Field(300.0, ge=0, description="K, Maxwell-Boltzmann initial velocities")
    nve_start_index: int = Field(0, ge=0, description="which test configuration starts the run")
    nve_seed: int = Field(0, description="seed of the initial velocities")
    nve_drift_max: float = Field(1.0, gt=0, description="meV/atom/ps, |slope| of a linear fit of the total energy")
    nve_fluctuation_ratio_max: float = Field(
        0.05,
        gt=0,
        description="std of the total energy (about its linear fit) over the std of the kinetic "
        "energy; above it: WARN (timestep too long, or forces inconsistent with the energy)",
    )
    nve_temperature_factor: float = Field(
        10.0,
        gt=1,
        description="unstable if the temperature exceeds this times max(nve_temperature, initial temperature, 100 K)",
    )
    nve_bond_stretch_max: float = Field(
        2.0,
        gt=1,
        description="molecules: unstable if a bond of the start geometry "
        "grows beyond this factor, or the molecule splits into fragments",
    )
    nve_neighbour_factor_max: float = Field(
        1.5,
        gt=1,
        description="periodic cells: unstable if an atom's nearest "
        "neighbour moves beyond this times the largest initial one",
    )
    nve_min_distance: float = Field(0.5, gt=0, description="Å, unstable if two atoms come closer than this")
    nve_record_every: int = Field(1, ge=1, description="keep every n-th step for the analysis")

    # 4. invariances ----------------------------------------------------------------------------------
    invariance_configs: int = Field(5, ge=1, description="test configurations transformed")
    invariance_energy_tol: float = Field(1e-5, gt=0, description="eV/atom allowed change of the energy")
    invariance_forces_tol: float = Field(1e-4, gt=0, description="eV/Å allowed change of a (rotated) force component")
    invariance_seed: int = 0

    # 5. gradients ------------------------------------------------------------------------------------
    gradient_configs: int = Field(3, ge=1, description="test configurations probed")
    gradient_components: int = Field(6, ge=1, description="force components probed per configuration")
    gradient_step: float = Field(1e-3, gt=0, description="Å, central finite-difference step")
    gradient_atol: float = Field(5e-3, gt=0, description="eV/Å absolute tolerance")
    gradient_rtol: float = Field(1e-2, ge=0, description="relative tolerance (of |F| of the component)")
    gradient_seed: int = 0

    # 6. force magnitude ------------------------------------------------------------------------------
    max_force: float = Field(10.0, gt=0, description="eV/Å, no predicted force above this (source: 10)")
    max_force_reference_factor: float = Field(
        1.5,
        ge=1,
        description="on the test set a predicted force above max_force counts only when it is also above this "
        "times the reference force on the same atom: hot test frames (water at 1000 K: up to 11 eV/Å in PBE) "
        "carry real forces above the bar, and predicting them is right",
    )

    # 7. vibrations -----------------------------------------------------------------------------------
    vibrations: bool = Field(True, description="compare harmonic frequencies for molecules")
    vibrations_start_index: int = Field(0, ge=0, description="test configuration relaxed for the frequencies")
    vibrations_max_deviation: float = Field(
        10.0, gt=0, description="cm⁻¹, largest allowed |ν_model − ν_ref| (our bar for water/PBE)"
    )
    relax_fmax: float = Field(1e-3, gt=0, description="eV/Å, relaxation convergence before the Hessian")
    relax_steps: int = Field(500, ge=1, description="maximum optimiser steps")
    vibrations_delta: float = Field(0.01, gt=0, description="Å, finite-difference displacement of the Hessian")
    vibrations_max_atoms: int = Field(
        40, ge=2, description="skip molecules larger than this (6N reference force calls)"
    )

    # 8. extrapolation --------------------------------------------------------------------------------
    extrapolation_quantile: float = Field(
        0.99,
        gt=0,
        le=1,
        description="training atoms' own nearest-neighbour "
        "descriptor distances: this quantile, times the factor, is the edge",
    )
    extrapolation_factor: float = Field(1.5, ge=1, description="multiplies the training quantile")
    extrapolation_energy_margin: float = Field(
        0.2,
        ge=0,
        description="fraction of the training energy range added "
        "on each side before a test energy counts as outside; the "
        "largest training force norm is widened by the same fraction",
    )
    extrapolation_distance_margin: float = Field(
        0.05,
        ge=0,
        description="Å below the shortest training distance of "
        "an element pair before a test distance counts as outside",
    )
    extrapolation_warn_fraction: float = Field(
        0.05, ge=0, le=1, description="WARN when more than this fraction of test configurations lie outside"
    )
    extrapolation_max_train_atoms: int = Field(20000, ge=10, description="subsample the training atoms above this")
    uncertainty_force_warn: float = Field(
        0.15, gt=0, description="eV/Å, max per-atom force std that counts as uncertain (DP-GEN's typical trust_hi)"
    )
    uncertainty_grade_warn: float = Field(
        2.0,
        gt=0,
        description="extrapolation grade γ above which a configuration counts as uncertain, for potentials whose "
        "uncertainty is a grade (MLIP's MTP: select above ~2, stop MD above ~10)",
    )

    @classmethod
    def from_file(cls, path: str | Path) -> ValidationSettings:
        """Read settings from a YAML or JSON file of ``field: value`` pairs (unknown keys are an error)."""
        import yaml
        from pydantic import ValidationError

        path = Path(path)
        if not path.exists():
            raise InputError(f"settings file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"cannot parse {path}: {exc}") from exc
        if isinstance(data, dict) and "validation" in data and isinstance(data["validation"], dict):
            data = data["validation"]
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InputError(f"bad validation settings in {path}: {exc}") from exc
