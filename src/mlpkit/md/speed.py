"""The source's section 5.1 table, measured for the user's own system: how many nanoseconds of MD a day buys
with the reference method (DFT-MD), with the trained potential (MLP-MD) and with a cheap baseline
(GFN2-xTB semi-empirical tight binding, or EMT for the metals it was made for).

Each engine drives the same velocity-Verlet MD from the same start (ASE's integrator, Maxwell-Boltzmann
velocities at 300 K, seeded); the first step (setup, SCF from scratch, JIT warm-up) is excluded, then
``steps`` steps are timed. ns/day = timestep (fs) × 1e-6 ns/fs × 86 400 s / (seconds per step).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms, units

#: Elements ASE's EMT was parametrised for as metals (it also "knows" H, C, N, O, which is meaningless for
#: molecules: EMT water is not water, so it is no baseline for it).
EMT_METALS = frozenset({"Al", "Ni", "Cu", "Pd", "Ag", "Pt", "Au"})


@dataclass
class SpeedRow:
    """One engine's measured MD speed on the run's system.

    seconds_per_step: wall seconds of one MD step (energy + forces + integration); us_per_atom_step: µs per
    atom per step; ns_per_day: simulated ns per wall-clock day at ``timestep_fs``.
    """

    engine: str
    kind: str
    method: str
    n_atoms: int
    steps: int
    timestep_fs: float
    seconds_per_step: float
    us_per_atom_step: float
    ns_per_day: float
    threads: int
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def ns_per_day(seconds_per_step: float, timestep_fs: float) -> float:
    """Simulated nanoseconds per wall-clock day."""
    return timestep_fs * 1e-6 * 86400.0 / seconds_per_step if seconds_per_step > 0 else float("inf")


def _threads() -> int:
    try:
        import torch

        return int(torch.get_num_threads())
    except ImportError:  # pragma: no cover - torch is a dependency
        return int(os.environ.get("OMP_NUM_THREADS", "1"))


def measure_md_speed(
    atoms: Atoms,
    calculator,
    *,
    steps: int,
    timestep: float = 0.5,
    engine: str = "",
    kind: str = "",
    method: str = "",
    seed: int = 0,
    temperature: float = 300.0,
    max_seconds: float | None = None,
) -> SpeedRow:
    """Time ``steps`` velocity-Verlet steps (fs ``timestep``) of ``atoms`` with ``calculator``.

    The first force call (setup) is not timed. With ``max_seconds``, the run stops early once that much time
    was spent (at least one step is timed), so a slow reference method cannot stall a pipeline.
    """
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    md = atoms.copy()
    md.calc = calculator
    thermalize_momenta(md, temperature_K=temperature, rng=np.random.default_rng(seed))
    Stationary(md)
    if not md.pbc.any() and len(md) > 1:
        ZeroRotation(md)
    dyn = VelocityVerlet(md, timestep * units.fs)
    md.get_forces()  # setup / warm-up, untimed
    done = 0
    start = time.perf_counter()
    while done < steps:
        dyn.run(1)
        done += 1
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
    elapsed = time.perf_counter() - start
    per_step = elapsed / done
    note = f"stopped after {done} of {steps} steps (time cap {max_seconds:g} s)" if done < steps else ""
    return SpeedRow(
        engine=engine or type(calculator).__name__,
        kind=kind,
        method=method,
        n_atoms=len(atoms),
        steps=done,
        timestep_fs=float(timestep),
        seconds_per_step=per_step,
        us_per_atom_step=per_step / len(atoms) * 1e6,
        ns_per_day=ns_per_day(per_step, timestep),
        threads=_threads(),
        note=note,
    )


def baseline_methods(atoms: Atoms, baseline: str = "auto") -> list[str]:
    """Which baselines apply: 'auto' picks GFN2-xTB when tblite is installed (any element up to Rn) and EMT
    when every element is one of EMT's metals; 'none' gives none."""
    import importlib.util

    if baseline == "none":
        return []
    if baseline != "auto":
        return [baseline]
    out = []
    symbols = set(atoms.get_chemical_symbols())
    if importlib.util.find_spec("tblite") is not None and max(atoms.numbers) <= 86:
        out.append("gfn2")
    if symbols <= EMT_METALS:
        out.append("emt")
    return out


def speed_table(
    atoms: Atoms,
    *,
    reference=None,
    potential=None,
    members: bool = True,
    baseline: str = "auto",
    reference_steps: int = 3,
    mlp_steps: int = 200,
    baseline_steps: int = 200,
    timestep: float = 0.5,
    reference_max_seconds: float = 300.0,
    progress=None,
) -> list[SpeedRow]:
    """Measure the table for ``atoms``: the ``reference`` labeler driving MD, the trained ``potential`` (and,
    for a committee, one member alone: production MD pays for every member), and the baselines.

    ``progress``: optional callable(str) told which engine is being timed.
    """
    from mlpkit.labelers import make_labeler

    say = progress or (lambda _msg: None)
    rows: list[SpeedRow] = []
    if reference is not None:
        say(f"timing reference-method MD ({reference.method}, {reference_steps} steps)")
        rows.append(
            measure_md_speed(
                atoms,
                reference.calculator(),
                steps=reference_steps,
                timestep=timestep,
                engine="DFT-MD" if reference.name in ("pyscf", "gpaw") else "reference MD",
                kind="reference",
                method=reference.method,
                max_seconds=reference_max_seconds,
            )
        )
    if potential is not None:
        say(f"timing MLP-MD ({potential.family}, {mlp_steps} steps)")
        name = f"MLP-MD ({potential.family}"
        n_members = len(getattr(potential, "members", []) or [])
        name += f" of {n_members})" if n_members else ")"
        rows.append(
            measure_md_speed(
                atoms,
                potential.calculator(),
                steps=mlp_steps,
                timestep=timestep,
                engine=name,
                kind="mlp",
                method=str(potential.metadata.get("method", "")) if hasattr(potential, "metadata") else "",
            )
        )
        if members and n_members:
            member = potential.members[0]
            rows.append(
                measure_md_speed(
                    atoms,
                    member.calculator(),
                    steps=mlp_steps,
                    timestep=timestep,
                    engine=f"MLP-MD (one {member.family} member)",
                    kind="mlp",
                    method=rows[-1].method,
                )
            )
    for name in baseline_methods(atoms, baseline):
        labeler = make_labeler(name)
        say(f"timing baseline MD ({labeler.method}, {baseline_steps} steps)")
        rows.append(
            measure_md_speed(
                atoms,
                labeler.calculator(),
                steps=baseline_steps,
                timestep=timestep,
                engine="semi-empirical MD" if name in ("gfn2", "tblite") else "classical MD",
                kind="baseline",
                method=labeler.method,
            )
        )
    return rows


def speedup_summary(rows: list[SpeedRow]) -> dict[str, float]:
    """Ratios worth quoting: MLP over reference (how much faster than DFT), MLP over baselines."""
    ref = next((r for r in rows if r.kind == "reference"), None)
    mlp = next((r for r in rows if r.kind == "mlp"), None)
    out: dict[str, float] = {}
    if ref and mlp:
        out["mlp_over_reference"] = ref.seconds_per_step / mlp.seconds_per_step
    for r in rows:
        if r.kind == "baseline" and mlp:
            out[f"mlp_over_{r.method}"] = r.seconds_per_step / mlp.seconds_per_step
    return out


def format_rate(ns_day: float) -> str:
    """Human scale: ns/day above 1, ps/day below (the source's table mixes both)."""
    if ns_day >= 1:
        return f"{ns_day:,.1f} ns/day"
    if ns_day >= 1e-3:
        return f"{ns_day * 1e3:,.1f} ps/day"
    return f"{ns_day * 1e6:,.2f} fs/day"
