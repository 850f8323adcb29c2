"""When is an MD run's kinetic energy a blow-up rather than physics? The bound :func:`~mlpkit.md.dynamics.run_md` uses.

The old rule (instantaneous temperature above 5x the target) stopped sane runs of small molecules, for two reasons
measured on one water molecule (``bench/exploding_stop_rate.py``, docs/benchmarks/exploding-stop.md):

* **A start away from equilibrium.** Active-learning walkers start from labelled configurations, many of them hot or
  distorted (1000 K frames, the most uncertain ones, normal-mode displacements), with velocities drawn at the walker's
  temperature. Within a quarter of a vibrational period (~2 fs for O-H) the start's excess potential energy turns
  into kinetic energy; shared over the 6 kinetic degrees of freedom of three atoms, 0.5 eV is 1900 K. A 300 K walker
  then passes 1500 K in its first steps while energy is conserved and the committee is confident; the Langevin
  friction (0.01/fs) takes ~100 fs to take the excess away.
* **Thermal fluctuations of few degrees of freedom.** In the canonical ensemble the kinetic energy follows a Gamma
  distribution with shape N_dof/2; with 6 degrees of freedom (ASE's count for a molecule whose centre of mass is
  fixed) it exceeds 5x its mean with probability 4e-5 per independent sample, not the 1e-6 once documented.

A genuine blow-up creates energy: forces that are not the gradient of the energy, or steps too long for them, pump
kinetic energy in without taking potential energy out; a potential with a hole (an MLP's energy falling without
bound a short way outside its data) hands out more energy than any start holds. So the bound on the kinetic energy
is the thermal one plus the potential energy the start has released so far (capped per atom):

    K(t) > K_thermal + min(max(0, V(0) - V(t)), RELEASE_CAP_PER_ATOM * N)

K_thermal: the kinetic energy the canonical distribution at the target exceeds with probability THERMAL_TAIL per
step, and never less than the old 5x (so no system is stopped that the old rule let run).
"""

from __future__ import annotations

import numpy as np
from ase import units

#: Per-step probability that a system in equilibrium at the target temperature passes the thermal bound. 1e-9: a
#: run of 1e5 walker steps (an active-learning run) is stopped falsely with probability 1e-4.
THERMAL_TAIL = 1e-9
#: The old rule's factor on the target temperature; kept as the least the thermal bound allows (large systems).
MIN_TEMPERATURE_FACTOR = 5.0
#: eV per atom: the most potential energy a start may release into kinetic energy and still count as a start
#: relaxing. More is no start the walkers are given (water's atomisation energy is ~3 eV per atom; the hottest
#: labelled start of the 300-1000 K water runs held 0.27) but a potential with a hole (a bad first committee of
#: liquid water released 3-8 eV per atom, docs/benchmarks/exploding-stop.md).
RELEASE_CAP_PER_ATOM = 1.0


def thermal_kinetic_bound(n_dof: int, temperature: float, tail: float = THERMAL_TAIL) -> float:
    """eV: the kinetic energy that ``n_dof`` degrees of freedom in canonical equilibrium at ``temperature`` (K)
    exceed with probability ``tail`` (Gamma(n_dof/2, kT) quantile), at least MIN_TEMPERATURE_FACTOR x the mean."""
    from scipy.stats import gamma

    kt = units.kB * max(float(temperature), 1.0)
    n = max(int(n_dof), 1)
    return float(max(gamma.isf(tail, n / 2.0) * kt, MIN_TEMPERATURE_FACTOR * n / 2.0 * kt))


class RunawayCheck:
    """The blow-up test of one MD run: kinetic energy beyond the thermal bound plus the energy the start released.

    n_dof:            kinetic degrees of freedom (ASE's count, :func:`mlpkit.md.temperature.kinetic_dof`)
    temperature:      K, the thermostat's target (NVE: the temperature of the initial velocities)
    n_atoms:          atoms in the system (caps the released energy at RELEASE_CAP_PER_ATOM each)
    start_energy:     eV, the potential energy at step 0
    max_temperature:  K; when given, the plain old rule instead (stop when the instantaneous temperature passes it)
    """

    def __init__(
        self,
        *,
        n_dof: int,
        temperature: float,
        n_atoms: int,
        start_energy: float,
        max_temperature: float | None = None,
    ):
        self.n_dof = max(int(n_dof), 1)
        self.start_energy = float(start_energy)
        self.max_temperature = None if max_temperature is None else float(max_temperature)
        self.thermal = thermal_kinetic_bound(self.n_dof, temperature)
        self.release_cap = RELEASE_CAP_PER_ATOM * int(n_atoms)

    @classmethod
    def at_start(cls, atoms, temperature: float, max_temperature: float | None = None) -> RunawayCheck:
        """The check of a run starting from ``atoms`` (with its calculator and, for Langevin, its FixCom constraint
        already set: they fix the degrees of freedom); evaluates the start's potential energy."""
        from mlpkit.md.temperature import kinetic_dof

        return cls(
            n_dof=kinetic_dof(atoms),
            temperature=temperature,
            n_atoms=len(atoms),
            start_energy=atoms.get_potential_energy(),
            max_temperature=max_temperature,
        )

    def bound(self, potential_energy: float) -> float:
        """eV: the largest kinetic energy that is not a blow-up at this potential energy (eV)."""
        released = min(max(self.start_energy - float(potential_energy), 0.0), self.release_cap)
        return self.thermal + released

    def check(self, kinetic_energy: float, potential_energy: float) -> str:
        """'' when the step is sane, else the reason (it mentions 'exploding dynamics')."""
        t = 2.0 * float(kinetic_energy) / (self.n_dof * units.kB)
        if self.max_temperature is not None:
            if t > self.max_temperature:
                return f"temperature {t:.0f} K > {self.max_temperature:.0f} K (exploding dynamics)"
            return ""
        limit = self.bound(potential_energy)
        if not np.isfinite(kinetic_energy) or kinetic_energy > limit:
            released = limit - self.thermal
            return (
                f"temperature {t:.0f} K: kinetic energy {kinetic_energy:.3g} eV > {limit:.3g} eV (thermal bound "
                f"{self.thermal:.3g} eV for {self.n_dof} degrees of freedom + {released:.3g} eV released by the start; "
                "exploding dynamics)"
            )
        return ""


__all__ = ["RELEASE_CAP_PER_ATOM", "THERMAL_TAIL", "RunawayCheck", "thermal_kinetic_bound"]
