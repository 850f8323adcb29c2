"""Energy conservation and stability in NVE molecular dynamics driven by the potential.

A velocity-Verlet run (ASE) from a test configuration with Maxwell-Boltzmann velocities. A conservative,
smooth potential conserves the total energy up to a bounded O(dt²) wobble; a drift means forces that are
not the gradient of the energy (or energy that depends on something besides positions), and NaN,
runaway temperature or atoms flying apart mean the potential is unusable for MD.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units

from mlpkit.potentials.base import Potential
from mlpkit.validation.checks import FAIL, PASS, WARN, CheckResult
from mlpkit.validation.settings import ValidationSettings


@dataclass
class NVEResult:
    """What one NVE run measured.

    time_fs: (n,) fs; epot, ekin: (n,) eV (total, not per atom); temperature: (n,) K;
    max_force: (n,) eV/Å, largest per-atom force norm at each recorded step.
    """

    n_atoms: int
    timestep: float
    steps_requested: int
    time_fs: np.ndarray
    epot: np.ndarray
    ekin: np.ndarray
    temperature: np.ndarray
    max_force: np.ndarray
    unstable: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def etot(self) -> np.ndarray:
        return self.epot + self.ekin

    @property
    def steps_done(self) -> int:
        return round(self.time_fs[-1] / self.timestep) if len(self.time_fs) else 0

    def drift(self) -> tuple[float, float, float]:
        """(slope meV/atom/ps of a linear fit of E_tot, std of E_tot about the fit meV/atom, std E_kin meV/atom)."""
        good = np.isfinite(self.etot)
        if good.sum() < 3:
            return float("nan"), float("nan"), float("nan")
        t = self.time_fs[good] / 1000.0  # ps
        e = self.etot[good] / self.n_atoms * 1000.0  # meV/atom
        slope, intercept = np.polyfit(t, e, 1)
        resid = e - (slope * t + intercept)
        return float(slope), float(resid.std()), float(np.std(self.ekin[good] / self.n_atoms * 1000.0))


class _StabilityWatch:
    """Detects atoms flying apart or collapsing, vectorised over bonds/atoms.

    Molecules (no periodic direction): the covalent bonds of the start geometry (ASE's natural cutoffs)
    must stay shorter than ``bond_factor`` times their initial length. Periodic cells: every atom's
    nearest-neighbour distance must stay below ``neighbour_factor`` times the largest initial one. Both:
    no two atoms closer than ``min_distance`` Å.
    """

    def __init__(self, atoms: Atoms, settings: ValidationSettings):
        from ase.neighborlist import natural_cutoffs, neighbor_list

        self.periodic = bool(atoms.pbc.any())
        self.min_distance = settings.nve_min_distance
        self.bond_factor = settings.nve_bond_stretch_max
        self.neighbour_factor = settings.nve_neighbour_factor_max
        if not self.periodic:
            i, j, d = neighbor_list("ijd", atoms, natural_cutoffs(atoms, mult=1.1))
            keep = i < j
            self.i, self.j, self.d0 = i[keep], j[keep], d[keep]
        else:
            self.nn0_max = float(self._nearest(atoms).max())

    def _nearest(self, atoms: Atoms) -> np.ndarray:
        """(n,) nearest-neighbour distance of each atom, Å (inf for an atom with none within the search).

        The search only needs to reach the instability limit: an atom with no neighbour inside it is flagged
        either way. Before that limit is known, the radius grows until every atom has a neighbour.
        """
        if hasattr(self, "nn0_max"):
            return _nearest_within(atoms, self.neighbour_factor * self.nn0_max * 1.01)
        search = 3.0
        while True:
            nn = _nearest_within(atoms, search)
            if np.isfinite(nn).all() or search > 30:
                return nn
            search *= 1.5

    def problems(self, atoms: Atoms) -> list[str]:
        pos = atoms.positions
        out = []
        if not self.periodic:
            from scipy.spatial.distance import pdist

            if len(atoms) > 1:
                dmin = float(pdist(pos).min())
                if dmin < self.min_distance:
                    out.append(f"two atoms {dmin:.2f} Å apart")
            if len(self.i):
                stretch = np.linalg.norm(pos[self.j] - pos[self.i], axis=1) / self.d0
                k = int(np.argmax(stretch))
                if stretch[k] > self.bond_factor:
                    out.append(
                        f"bond {atoms.get_chemical_symbols()[self.i[k]]}{self.i[k]}-"
                        f"{atoms.get_chemical_symbols()[self.j[k]]}{self.j[k]} stretched to "
                        f"{stretch[k]:.1f}x its initial length (molecule falling apart)"
                    )
        else:
            nn = self._nearest(atoms)
            if nn.min() < self.min_distance:
                out.append(f"two atoms {nn.min():.2f} Å apart")
            if nn.max() > self.neighbour_factor * self.nn0_max:
                out.append(
                    f"atom {int(np.argmax(nn))} has no neighbour within {self.neighbour_factor:g}x the "
                    f"largest initial nearest-neighbour distance ({self.nn0_max:.2f} Å)"
                )
        return out


def _nearest_within(atoms: Atoms, cutoff: float) -> np.ndarray:
    """(n,) distance from each atom to its nearest neighbour within ``cutoff`` Å (inf if none); vesin list."""
    from vesin import NeighborList

    pbc = np.asarray(atoms.pbc, dtype=bool)
    box = atoms.cell[:] if pbc.any() else np.zeros((3, 3))
    i, j, d = NeighborList(cutoff=float(cutoff), full_list=False).compute(
        points=atoms.positions, box=box, periodic=pbc.tolist(), quantities="ijd"
    )
    nn = np.full(len(atoms), np.inf)
    np.minimum.at(nn, i, d)
    np.minimum.at(nn, j, d)
    return nn


def run_nve(potential: Potential, start: Atoms, settings: ValidationSettings) -> NVEResult:
    """Velocity-Verlet NVE from ``start`` (velocities drawn at ``nve_temperature``; momentum removed).

    Stops early when the run becomes unstable (NaN energies or forces, temperature above the limit,
    atoms flying apart or collapsing); the reasons are in ``unstable``.
    """
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    s = settings
    atoms = start.copy()
    atoms.calc = potential.calculator()
    thermalize_momenta(atoms, temperature_K=s.nve_temperature, rng=np.random.default_rng(s.nve_seed))
    Stationary(atoms)
    if not atoms.pbc.any() and len(atoms) > 2:
        ZeroRotation(atoms)
    watch = _StabilityWatch(atoms, s)
    t_limit = s.nve_temperature_factor * max(s.nve_temperature, atoms.get_temperature(), 100.0)
    dyn = VelocityVerlet(atoms, timestep=s.nve_timestep * units.fs)

    rec: dict[str, list[float]] = {"t": [], "epot": [], "ekin": [], "temp": [], "fmax": []}
    unstable: list[str] = []
    # structural checks every ~2% of the run: cheap, and a molecule cannot fly apart unseen in 40 steps
    check_every = max(1, s.nve_steps // 50)
    start_time = time.perf_counter()

    def record() -> None:
        epot = atoms.get_potential_energy()  # cached by the calculator: no extra prediction
        forces = atoms.get_forces()
        ekin = atoms.get_kinetic_energy()
        temp = atoms.get_temperature()
        rec["t"].append(dyn.nsteps * s.nve_timestep)
        rec["epot"].append(epot)
        rec["ekin"].append(ekin)
        rec["temp"].append(temp)
        fmax = float(np.sqrt((forces**2).sum(axis=1)).max())
        rec["fmax"].append(fmax)
        if not (math.isfinite(epot) and math.isfinite(fmax) and math.isfinite(ekin)):
            unstable.append(f"NaN/inf energy or forces at step {dyn.nsteps}")
        elif temp > t_limit:
            unstable.append(f"temperature {temp:.0f} K at step {dyn.nsteps} (limit {t_limit:.0f} K)")
        elif dyn.nsteps % check_every == 0:
            unstable.extend(f"{p} at step {dyn.nsteps}" for p in watch.problems(atoms))

    record()
    while dyn.nsteps < s.nve_steps and not unstable:
        n = min(s.nve_record_every, s.nve_steps - dyn.nsteps)
        try:
            dyn.run(n)
        except (FloatingPointError, ValueError, np.linalg.LinAlgError) as exc:
            unstable.append(f"the integrator failed at step {dyn.nsteps}: {exc}")
            break
        record()
    if not unstable:
        unstable.extend(watch.problems(atoms))
    return NVEResult(
        n_atoms=len(atoms),
        timestep=s.nve_timestep,
        steps_requested=s.nve_steps,
        time_fs=np.array(rec["t"]),
        epot=np.array(rec["epot"]),
        ekin=np.array(rec["ekin"]),
        temperature=np.array(rec["temp"]),
        max_force=np.array(rec["fmax"]),
        unstable=unstable,
        seconds=time.perf_counter() - start_time,
    )


def check_nve(result: NVEResult, settings: ValidationSettings) -> list[CheckResult]:
    """Two rows: stability (NaN, temperature, structure) and energy conservation (drift, fluctuation)."""
    s = settings
    stable = not result.unstable
    finite_t = result.temperature[np.isfinite(result.temperature)]
    t_max = float(finite_t.max()) if len(finite_t) else float("nan")
    ps = result.steps_done * result.timestep / 1000.0
    rows = [
        CheckResult(
            key="nve_stability",
            title="Stable NVE dynamics",
            status=PASS if stable else FAIL,
            value=f"{result.steps_done}/{result.steps_requested} steps ({ps:.3g} ps), max T {t_max:.0f} K"
            + ("" if stable else f"; {result.unstable[0]}"),
            threshold=f"no NaN, T < {s.nve_temperature_factor:g}x start, bonds < {s.nve_bond_stretch_max:g}x "
            f"initial, distances > {s.nve_min_distance:g} Å",
            details={
                "steps_done": result.steps_done,
                "steps_requested": result.steps_requested,
                "max_temperature": t_max,
                "problems": result.unstable,
                "seconds": result.seconds,
            },
            message="" if stable else "; ".join(result.unstable),
        )
    ]
    slope, fluct, ekin_std = result.drift()
    ratio = fluct / ekin_std if ekin_std > 0 else float("nan")
    details = {
        "drift_mev_per_atom_per_ps": slope,
        "fluctuation_mev_per_atom": fluct,
        "ekin_std_mev_per_atom": ekin_std,
        "fluctuation_ratio": ratio,
        "timestep_fs": result.timestep,
        "steps": result.steps_done,
        "temperature_start": float(result.temperature[0]),
        "mean_temperature": float(np.nanmean(result.temperature)),
    }
    # a drift is resolved only if the change it implies over the run stands out of the wobble about the fit
    resolved = abs(slope) * ps > 3 * fluct if np.isfinite(slope) else False
    details["drift_resolved"] = bool(resolved)
    if not np.isfinite(slope):
        status, message = FAIL, "too few finite steps to measure a drift"
    elif abs(slope) > s.nve_drift_max and resolved:
        status, message = FAIL, "the total energy drifts: forces inconsistent with the energy, or not smooth"
    elif abs(slope) > s.nve_drift_max:
        status, message = (
            WARN,
            (
                f"the fitted drift is not resolved above the fluctuation in {ps:.2g} ps: "
                "run longer (--nve-steps) for a verdict"
            ),
        )
    elif not stable:
        status, message = FAIL, "the run was unstable before the end (see the stability row)"
    elif not np.isfinite(ratio) or ratio > s.nve_fluctuation_ratio_max:
        status, message = (
            WARN,
            (
                "the total energy fluctuates much: try a shorter timestep; if that does not help, "
                "forces and energy disagree"
            ),
        )
    else:
        status, message = PASS, ""
    rows.append(
        CheckResult(
            key="nve_energy",
            title="NVE energy conservation",
            status=status,
            value=f"drift {slope:+.3g} meV/atom/ps, fluctuation {fluct:.3g} meV/atom "
            f"({ratio:.2g} of the kinetic energy's), dt {result.timestep:g} fs",
            threshold=f"|drift| ≤ {s.nve_drift_max:g} meV/atom/ps; fluctuation ≤ {s.nve_fluctuation_ratio_max:g}x "
            "kinetic (WARN)",
            details=details,
            message=message,
        )
    )
    return rows
