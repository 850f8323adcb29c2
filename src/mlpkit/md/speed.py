"""The source's section 5.1 table, measured for the user's own system: how many nanoseconds of MD a day buys
with the reference method (DFT-MD), with the trained potential (MLP-MD) and with a cheap baseline
(GFN2-xTB semi-empirical tight binding, or EMT for the metals it was made for).

Each engine drives the same velocity-Verlet MD from the same start (ASE's integrator, Maxwell-Boltzmann
velocities at 300 K, seeded). The engines are timed in the same conditions, so that their ratios mean
something on a shared or busy machine:

* warm-up first: the setup force call and ``warmup`` steps (SCF from scratch, JIT compilation, caches) are not
  timed;
* the same thread count for every engine (torch and PySCF set to it for the measurement; OpenMP codes such as
  tblite read it from ``OMP_NUM_THREADS``, which :mod:`mlpkit.threads` sets at start-up);
* ``repeats`` blocks of ``steps`` steps per engine, the engines taking turns block by block, so a burst of
  load from another process hits all of them alike; the row reports the median block (and the fastest and
  slowest) in seconds per step.

ns/day = timestep (fs) × 1e-6 ns/fs × 86 400 s / (seconds per step).
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms, units

#: Elements ASE's EMT was parametrised for as metals (it also "knows" H, C, N, O, which is meaningless for
#: molecules: EMT water is not water, so it is no baseline for it).
EMT_METALS = frozenset({"Al", "Ni", "Cu", "Pd", "Ag", "Pt", "Au"})


@dataclass
class SpeedRow:
    """One engine's measured MD speed on the run's system.

    seconds_per_step: wall seconds of one MD step (energy + forces + integration), the median over ``repeats``
    blocks of ``steps`` steps (``min/max_seconds_per_step``: the fastest and slowest block); us_per_atom_step:
    µs per atom per step; ns_per_day: simulated ns per wall-clock day at ``timestep_fs``; warmup_steps: untimed
    steps before the first block; threads: torch/OpenMP threads during the measurement.
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
    repeats: int = 1
    warmup_steps: int = 0
    min_seconds_per_step: float = 0.0
    max_seconds_per_step: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def ns_per_day(seconds_per_step: float, timestep_fs: float) -> float:
    """Simulated nanoseconds per wall-clock day."""
    return timestep_fs * 1e-6 * 86400.0 / seconds_per_step if seconds_per_step > 0 else float("inf")


@contextlib.contextmanager
def same_threads(threads: int | None = None) -> Iterator[int]:
    """Give torch and PySCF ``threads`` threads (default: :func:`mlpkit.threads.thread_count`) while timing.

    Without it the reference (PySCF: all cores unless told), the potential (torch's own default) and the
    baseline could each run a different number of threads, and the table would compare thread counts.
    """
    import torch

    from mlpkit.threads import thread_count

    n = int(threads or thread_count()[0])
    torch_before = torch.get_num_threads()
    pyscf_lib = sys.modules.get("pyscf.lib")
    pyscf_before = pyscf_lib.num_threads() if pyscf_lib is not None else None
    torch.set_num_threads(n)
    if pyscf_lib is not None:
        pyscf_lib.num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(torch_before)
        if pyscf_lib is not None and pyscf_before is not None:
            pyscf_lib.num_threads(pyscf_before)


class _Engine:
    """One engine's MD, warmed up, timed block by block."""

    def __init__(
        self,
        atoms: Atoms,
        calculator,
        *,
        steps: int,
        timestep: float,
        warmup: int,
        seed: int,
        temperature: float,
        max_seconds: float | None,
    ):
        from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
        from ase.md.verlet import VelocityVerlet

        if steps < 1 or warmup < 0:
            raise ValueError(f"need steps >= 1 and warmup >= 0, got {steps}, {warmup}")
        self.atoms = atoms.copy()
        self.atoms.calc = calculator
        thermalize_momenta(self.atoms, temperature_K=temperature, rng=np.random.default_rng(seed))
        Stationary(self.atoms)
        if not self.atoms.pbc.any() and len(self.atoms) > 1:
            ZeroRotation(self.atoms)
        self.dyn = VelocityVerlet(self.atoms, timestep * units.fs)
        self.steps, self.warmup, self.max_seconds = steps, warmup, max_seconds
        self.per_step: list[float] = []  # seconds per step of each timed block
        self.spent = 0.0
        self.capped_at: int | None = None  # steps of a block cut short by the time cap

    def warm_up(self) -> None:
        self.atoms.get_forces()  # setup: SCF from scratch, descriptor tables, JIT
        if self.warmup:
            self.dyn.run(self.warmup)

    @property
    def done(self) -> bool:
        return self.capped_at is not None or (self.max_seconds is not None and self.spent > self.max_seconds)

    def time_block(self) -> None:
        if self.done:
            return
        n = 0
        start = time.perf_counter()
        while n < self.steps:
            self.dyn.run(1)
            n += 1
            if self.max_seconds is not None and self.spent + time.perf_counter() - start > self.max_seconds:
                break
        elapsed = time.perf_counter() - start
        self.spent += elapsed
        self.per_step.append(elapsed / n)
        if n < self.steps:
            self.capped_at = n

    def row(self, *, engine: str, kind: str, method: str, timestep: float, threads: int) -> SpeedRow:
        median = statistics.median(self.per_step)
        blocks = len(self.per_step)
        note = (
            f"median of {blocks} block(s) of {self.capped_at or self.steps} step(s) after {self.warmup} warm-up "
            f"step(s), engines timed in turn, {threads} thread(s)"
        )
        if self.capped_at is not None or (self.max_seconds is not None and self.spent > self.max_seconds):
            note += f"; stopped by the time cap of {self.max_seconds:g} s"
        return SpeedRow(
            engine=engine,
            kind=kind,
            method=method,
            n_atoms=len(self.atoms),
            steps=self.capped_at or self.steps,
            timestep_fs=float(timestep),
            seconds_per_step=median,
            us_per_atom_step=median / len(self.atoms) * 1e6,
            ns_per_day=ns_per_day(median, timestep),
            threads=threads,
            note=note,
            repeats=blocks,
            warmup_steps=self.warmup,
            min_seconds_per_step=min(self.per_step),
            max_seconds_per_step=max(self.per_step),
        )


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
    warmup: int = 2,
    repeats: int = 3,
    threads: int | None = None,
) -> SpeedRow:
    """Time one engine alone: ``repeats`` blocks of ``steps`` velocity-Verlet steps (fs ``timestep``).

    The setup force call and ``warmup`` steps are not timed. With ``max_seconds``, timing stops once that much
    time was spent (at least one step is timed), so a slow reference method cannot stall a pipeline. To compare
    engines, use :func:`speed_table`, which times them in turn.
    """
    md = _Engine(
        atoms,
        calculator,
        steps=steps,
        timestep=timestep,
        warmup=warmup,
        seed=seed,
        temperature=temperature,
        max_seconds=max_seconds,
    )
    with same_threads(threads) as n:
        md.warm_up()
        for _ in range(max(1, repeats)):
            md.time_block()
    return md.row(engine=engine or type(calculator).__name__, kind=kind, method=method, timestep=timestep, threads=n)


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
    warmup: int = 2,
    repeats: int = 3,
    threads: int | None = None,
) -> list[SpeedRow]:
    """Measure the table for ``atoms``: the ``reference`` labeler driving MD, the trained ``potential`` (and,
    for a committee, one member alone: production MD pays for every member), and the baselines.

    Every engine is set up and warmed up (``warmup`` untimed steps), then the engines take turns timing a
    block of their ``*_steps`` steps, ``repeats`` rounds, all with ``threads`` threads (module docstring).
    The reference stops taking part once it used ``reference_max_seconds``. ``progress``: optional
    callable(str) told what is being timed.
    """
    from mlpkit.labelers import make_labeler

    say = progress or (lambda _msg: None)
    plan: list[tuple[dict, _Engine]] = []

    def add(calculator, steps: int, max_seconds: float | None = None, **row) -> None:
        engine = _Engine(
            atoms,
            calculator,
            steps=steps,
            timestep=timestep,
            warmup=warmup,
            seed=0,
            temperature=300.0,
            max_seconds=max_seconds,
        )
        plan.append((row, engine))

    if reference is not None:
        add(
            reference.calculator(),
            reference_steps,
            reference_max_seconds,
            engine="DFT-MD" if reference.name in ("pyscf", "gpaw") else "reference MD",
            kind="reference",
            method=reference.method,
        )
    if potential is not None:
        name = f"MLP-MD ({potential.family}"
        n_members = len(getattr(potential, "members", []) or [])
        name += f" of {n_members})" if n_members else ")"
        method = str(potential.metadata.get("method", "")) if hasattr(potential, "metadata") else ""
        add(potential.calculator(), mlp_steps, engine=name, kind="mlp", method=method)
        if members and n_members:
            member = potential.members[0]
            add(
                member.calculator(), mlp_steps, engine=f"MLP-MD (one {member.family} member)", kind="mlp", method=method
            )
    for name in baseline_methods(atoms, baseline):
        labeler = make_labeler(name)
        add(
            labeler.calculator(),
            baseline_steps,
            engine="semi-empirical MD" if name in ("gfn2", "tblite") else "classical MD",
            kind="baseline",
            method=labeler.method,
        )
    with same_threads(threads) as n:
        for row, engine in plan:
            say(f"warming up {row['engine']} ({row['method'] or row['kind']}, {warmup} steps)")
            engine.warm_up()
        for r in range(max(1, repeats)):
            say(f"timing round {r + 1} of {max(1, repeats)}: each engine in turn")
            for _, engine in plan:
                engine.time_block()
    return [engine.row(timestep=timestep, threads=n, **row) for row, engine in plan]


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
