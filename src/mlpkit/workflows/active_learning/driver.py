"""Configurations from MD driven by a cheap method (initial set, test set, the random baseline's pool)."""

from __future__ import annotations

from collections.abc import Sequence

from ase import Atoms

from mlpkit.config.sampling import md_ensemble
from mlpkit.errors import InputError


def driver_frames(
    structure_or_starts: Atoms | Sequence[Atoms],
    calculator_factory,
    *,
    temperature: float,
    thermostat: str,
    timestep: float,
    friction: float,
    equilibration: int,
    every: int,
    n: int,
    seed: int,
    allow_bond_breaking: bool = False,
    label: str = "md",
    driver: str | None = None,
    pressure: float = 1.0,
    barostat_time: float = 1000.0,
) -> list[Atoms]:
    """``n`` frames, one every ``every`` steps after ``equilibration``, of MD driven by a cheap method or a
    potential (``calculator_factory`` makes its ASE calculator); ``driver``, its name, is recorded in each frame's
    ``info`` (provenance). ``pressure`` (bar) and ``barostat_time`` (fs) set the barostat of thermostat 'npt'.

    If the MD stops early (unphysical), it restarts from the start structure with the next seed until ``n``
    frames are collected (at most 20 restarts)."""
    from mlpkit.md.dynamics import run_md

    starts = [structure_or_starts] if isinstance(structure_or_starts, Atoms) else list(structure_or_starts)
    frames: list[Atoms] = []
    for attempt in range(20):
        need = n - len(frames)
        if need <= 0:
            break
        start = starts[attempt % len(starts)]
        steps = equilibration + need * every
        res = run_md(
            start,
            calculator_factory(),
            ensemble=md_ensemble(thermostat),
            temperature=temperature,
            timestep=timestep,
            steps=steps,
            friction=friction,
            pressure=pressure,
            barostat_time=barostat_time,
            interval=every,
            seed=seed + attempt,
            allow_bond_breaking=allow_bond_breaking,
        )
        got = [f for f in res.frames if f.info["step"] > equilibration and f.info["step"] % every == 0]
        for f in got[:need]:
            f.info.update(source=label, temperature=float(temperature))
            if driver is not None:
                f.info["driver"] = driver
            for k in ("mlp_energy",):
                f.info.pop(k, None)
            frames.append(f)
    if len(frames) < n:
        raise InputError(f"driver MD at {temperature} K kept going unphysical; got {len(frames)} of {n} frames")
    return frames
