"""What the temperature of a (small) MD run means: mean with its standard error, and the expected fluctuation.

A system's instantaneous kinetic temperature fluctuates in the canonical ensemble with a relative standard
deviation sqrt(2/N_dof): for one water molecule (ASE counts 3N - 3 = 6 degrees of freedom with the centre of
mass fixed) that is ±58 %, ±173 K at 300 K. The mean of a short run then has a large error bar, and successive
steps are strongly correlated, so the error bar comes from block averages, not from the step-to-step spread.
A mean many standard errors off the thermostat's target says the run was not equilibrated (a weak Langevin
friction heats slowly), not that the potential is wrong.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TemperatureSummary:
    """Temperatures in K. mean/std: over all steps; sem: standard error of the mean from ``blocks`` block means;
    expected_std: target·sqrt(2/n_dof), the canonical fluctuation; second_half_mean: mean of the last half
    (close to ``mean`` once equilibrated); offset_in_sem: (mean - target)/sem; note: the plain-words reading.
    """

    mean: float
    std: float
    sem: float
    blocks: int
    n_dof: int
    target: float | None
    expected_std: float | None
    second_half_mean: float
    offset_in_sem: float | None
    note: str

    def to_dict(self) -> dict:
        return asdict(self)


def _k(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 10 else f"{x:.1f}"


def block_standard_error(values: np.ndarray, n_blocks: int = 10) -> tuple[float, int]:
    """(standard error of the mean, blocks used) from the means of ``n_blocks`` consecutive equal blocks.

    Correlated samples make std/sqrt(n) far too small; block means a correlation time apart are nearly
    independent. Fewer than 2 samples per block: fewer blocks. NaN with fewer than 4 values.
    """
    values = np.asarray(values, dtype=float)
    n_blocks = min(n_blocks, len(values) // 2)
    if n_blocks < 2:
        return float("nan"), 0
    size = len(values) // n_blocks
    means = values[: size * n_blocks].reshape(n_blocks, size).mean(axis=1)
    return float(means.std(ddof=1) / np.sqrt(n_blocks)), n_blocks


def temperature_summary(
    temperatures,
    *,
    n_dof: int,
    target: float | None = None,
    ensemble: str = "nvt",
    friction: float | None = None,
    n_atoms: int | None = None,
) -> TemperatureSummary:
    """Summarise the instantaneous ``temperatures`` (K) of a run; ``n_dof`` as ASE counts them (3N minus the
    constraints' degrees of freedom); ``target`` (K) the thermostat's; ``friction`` in 1/fs (Langevin).
    """
    t = np.asarray(temperatures, dtype=float)
    t = t[np.isfinite(t)]
    if not len(t):
        raise ValueError("no finite temperatures to summarise")
    if n_dof < 1:
        raise ValueError(f"n_dof must be >= 1, got {n_dof}")
    mean, std = float(t.mean()), float(t.std())
    sem, blocks = block_standard_error(t)
    second = float(t[len(t) // 2 :].mean())
    expected = float(target * np.sqrt(2.0 / n_dof)) if target else None
    offset = (mean - target) / sem if target and sem > 0 and np.isfinite(sem) else None

    what = f"a {n_atoms}-atom system" if n_atoms else "this system"
    parts = [
        f"mean {_k(mean)} ± {_k(sem)} K (standard error from {blocks} block averages; step-to-step std {_k(std)} K)"
        if blocks
        else f"mean {_k(mean)} K over only {len(t)} step(s): too few for an error bar"
    ]
    if expected is not None and ensemble == "nvt":  # the canonical formula; NVE fluctuates differently
        parts.append(
            f"{what} has {n_dof} kinetic degrees of freedom, so its instantaneous temperature fluctuates by about "
            f"±{expected:.0f} K (T·sqrt(2/N_dof)) even in equilibrium at {target:g} K"
        )
    if offset is not None and abs(offset) > 3:
        side = "below" if offset < 0 else "above"
        why = "not equilibrated"
        if ensemble == "nvt" and friction:
            why = (
                f"not equilibrated: the Langevin thermostat (friction {friction:g}/fs, time constant "
                f"{1.0 / friction:.0f} fs) had too little time to bring the start to {target:g} K; run longer or "
                "raise the friction"
            )
        elif ensemble == "nve":
            why = "expected in NVE: kinetic energy is shared with the potential energy, no thermostat restores it"
        off = abs(mean - target)
        parts.append(f"the mean is {off:.0f} K ({abs(offset):.1f} standard errors) {side} the target: {why}")
    return TemperatureSummary(
        mean=mean,
        std=std,
        sem=sem,
        blocks=blocks,
        n_dof=int(n_dof),
        target=float(target) if target else None,
        expected_std=expected,
        second_half_mean=second,
        offset_in_sem=offset,
        note="; ".join(parts) + ".",
    )


def kinetic_dof(atoms) -> int:
    """Degrees of freedom ASE's ``get_temperature`` divides by: 3N minus those the constraints remove."""
    return 3 * len(atoms) - sum(c.get_removed_dof(atoms) for c in atoms.constraints)


__all__ = ["TemperatureSummary", "block_standard_error", "kinetic_dof", "temperature_summary"]
