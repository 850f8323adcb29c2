"""``mlpkit compare``: every family on the same data, one table.

Each family named is trained with its defaults (or the settings given) on the same training data, with the same
seed; each saved or pretrained model named is loaded as it is. All are measured on the same test configurations:

* errors: energy MAE (meV/atom), force MAE and worst force error (meV/Å), and whether any predicted force exceeds
  the checklist's bar;
* cost: training wall time (s), MD cost (µs/atom/step: force calls on a periodic box of about ``md_atoms`` atoms
  built from the test data, warm, median of several steps) and the memory the first call added (KB/atom, from the
  process's resident set: a rough number, stated as such);
* uncertainty: its kind, and the Spearman rank correlation of the per-configuration score with the true worst force
  error on the test set (does it know where it is wrong?);
* the physics checklist (PASS/WARN/FAIL counts of :func:`mlpkit.validation.report.validate`), when asked.

Results: ``compare.json`` (every number), ``models/NAME`` (the trained models), ``parity/NAME/`` and
``report.html`` (:mod:`mlpkit.workflows.compare.report`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from mlpkit.data.records import reference_results
from mlpkit.errors import InputError
from mlpkit.files import atomic_write_json
from mlpkit.potentials import Potential, load_potential
from mlpkit.uncertainty.calibration import spearman
from mlpkit.uncertainty.model_spec import ModelSpec, fit_model
from mlpkit.validation.checks import predict_all
from mlpkit.validation.metrics import error_table
from mlpkit.validation.parity import parity_plots

RESULT_FILE = "compare.json"


@dataclass
class Entry:
    """One row of the table (units in the names; None where not measured)."""

    name: str
    family: str
    source: str  # "trained" or the model's path / pretrained name
    energy_mae_mev_atom: float
    force_mae_mev_a: float
    worst_force_error_mev_a: float
    max_predicted_force: float  # eV/Å
    train_seconds: float | None
    md_us_per_atom_step: float | None
    md_atoms: int | None
    memory_kb_per_atom: float | None
    uncertainty: str
    uncertainty_spearman: float | None
    checklist: dict[str, int] | None = None
    parity: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def md_box(test: Sequence[Atoms], n_atoms: int) -> Atoms:
    """A periodic structure of at least ``n_atoms`` atoms from the test data: a periodic test cell repeated, or copies
    of a molecule on a cubic grid 3 Å further apart than its size (a dilute box, so the cost is that of real MD)."""
    base = test[0].copy()
    base.calc = None
    if base.pbc.all():
        reps = int(np.ceil((n_atoms / len(base)) ** (1 / 3)))
        return base.repeat((reps, reps, reps))
    pos = base.positions - base.positions.mean(axis=0)
    size = float(np.ptp(pos, axis=0).max()) + 3.0
    m = int(np.ceil((n_atoms / len(base)) ** (1 / 3)))
    grid = np.array([(i, j, k) for i in range(m) for j in range(m) for k in range(m)], dtype=float) * size
    box = Atoms(
        symbols=base.get_chemical_symbols() * len(grid),
        positions=(grid[:, None, :] + pos[None] + size / 2).reshape(-1, 3),
        cell=np.eye(3) * m * size,
        pbc=True,
    )
    return box


def _rss_kb() -> float | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024
    except (OSError, ValueError, IndexError):
        return None


def md_cost(
    potential: Potential, box: Atoms, steps: int = 5, seed: int = 0, budget_s: float = 30.0
) -> tuple[float, float | None]:
    """(µs per atom per force call, KB per atom the first call added) on ``box`` moved a little between calls.

    The median of ``steps`` timed calls after a warm-up call, fewer (at least one) when the warm-up call shows that
    ``steps`` calls would take longer than ``budget_s`` seconds (a tight-binding Δ term on a 300-atom box takes
    minutes per call; its cost is clear from one)."""
    rng = np.random.default_rng(seed)
    atoms = box.copy()
    atoms.calc = potential.calculator()
    before = _rss_kb()
    t0 = time.perf_counter()
    atoms.get_forces()  # warm-up: compilation, neighbour lists, caches
    warm = time.perf_counter() - t0
    after = _rss_kb()
    times = []
    for _ in range(max(1, min(steps, int(budget_s / max(warm, 1e-9))))):
        atoms.positions += rng.normal(0, 0.005, atoms.positions.shape)
        t0 = time.perf_counter()
        atoms.get_forces()
        times.append(time.perf_counter() - t0)
    memory = None if before is None or after is None else max(after - before, 0.0) / len(atoms)
    return 1e6 * float(np.median(times)) / len(atoms), memory


def measure(
    name: str,
    potential: Potential,
    test: Sequence[Atoms],
    out_dir: Path,
    *,
    source: str,
    train_seconds: float | None,
    box: Atoms | None,
    checklist: Callable[[Potential, Path], dict[str, int]] | None,
) -> Entry:
    """Every number of one row; a model that cannot predict the test data gets a row with its error."""
    pred = predict_all(potential, list(test))
    table = error_table(test, pred)
    metrics = table.metrics()
    _, f_ref = reference_results(test)
    worst = np.array([float(np.linalg.norm(p - r, axis=1).max()) for p, r in zip(pred.forces, f_ref, strict=True)])
    score = pred.score()
    rho = spearman(score, worst) if score is not None else None
    plots = parity_plots(table, out_dir / "parity" / name, label=name)
    us, kb = md_cost(potential, box) if box is not None else (None, None)
    return Entry(
        name=name,
        family=potential.family,
        source=source,
        energy_mae_mev_atom=1000 * metrics["energy_mae_per_atom"],
        force_mae_mev_a=1000 * metrics["forces_mae"],
        worst_force_error_mev_a=1000 * metrics["forces_max_error"],
        max_predicted_force=max(float(np.abs(f).max()) for f in pred.forces),
        train_seconds=train_seconds,
        md_us_per_atom_step=us,
        md_atoms=None if box is None else len(box),
        memory_kb_per_atom=kb,
        uncertainty=potential.uncertainty_kind,
        uncertainty_spearman=None if rho is None or not np.isfinite(rho) else float(rho),
        checklist=checklist(potential, out_dir / "checklist" / name) if checklist else None,
        parity={k: str(v.relative_to(out_dir)) for k, v in plots.items()},
    )


def compare(
    train: Sequence[Atoms],
    test: Sequence[Atoms],
    out_dir: str | os.PathLike,
    *,
    families: Sequence[str] = (),
    models: Sequence[str] = (),
    settings: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
    md_atoms: int = 300,
    run_checklist: bool = True,
    say: Callable[[str], None] = lambda _: None,
) -> list[Entry]:
    """Train ``families`` on ``train``, load ``models``, measure all on ``test``; write compare.json and the page.

    settings: per family, ``{"hyperparameters": {...}, "fit": {...}, "committee": {...}}`` (a ModelSpec's keys).
    A family or model that fails is reported in its row (``error``), not fatal: the others are still compared.
    """
    from mlpkit.workflows.compare.report import write_page

    if not families and not models:
        raise InputError("name at least one family (--families) or model (--models) to compare")
    train, test = list(train), list(test)
    if not test:
        raise InputError("compare needs labelled test configurations")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    box = md_box(test, md_atoms) if md_atoms > 0 else None
    check = _checklist(train, test) if run_checklist else None
    entries: list[Entry] = []
    todo = [("trained", f) for f in families] + [("model", m) for m in models]
    for kind, what in todo:
        name = what if kind == "trained" else Path(what).name or what
        say(f"{name}: {'training' if kind == 'trained' else 'loading'}")
        try:
            if kind == "trained":
                if not train:
                    raise InputError("no training data (--data) to train a family on")
                spec = ModelSpec(family=what, **{"committee": {"n_members": 1}, **(settings or {}).get(what, {})})
                t0 = time.perf_counter()
                pot = fit_model(spec, train, seed=seed)
                seconds = time.perf_counter() - t0
                pot.save(out / "models" / name)
                source = "trained"
            else:
                pot, seconds, source = load_potential(what), None, what
            say(f"{name}: measuring")
            entries.append(
                measure(name, pot, test, out, source=source, train_seconds=seconds, box=box, checklist=check)
            )
        except Exception as exc:  # one broken family must not hide the others' numbers
            family, source = (what, "trained") if kind == "trained" else ("?", what)
            entries.append(failed_entry(name, family, source, exc))
    record = {
        "entries": [e.to_dict() for e in entries],
        "n_train": len(train),
        "n_test": len(test),
        "seed": seed,
        "md_atoms": None if box is None else len(box),
    }
    atomic_write_json(out / RESULT_FILE, record)
    write_page(entries, out, n_train=len(train), n_test=len(test))
    return entries


def failed_entry(name: str, family: str, source: str, exc: Exception) -> Entry:
    """The row of a model that could not be trained or measured: its error instead of numbers."""
    nan = float("nan")
    return Entry(name, family, source, nan, nan, nan, nan, None, None, None, None, "none", None,
                 error=f"{type(exc).__name__}: {exc}")  # fmt: skip


def _checklist(train: Sequence[Atoms], test: Sequence[Atoms]) -> Callable[[Potential, Path], dict[str, int]]:
    """The physics checklist with a shorter NVE run (1000 steps) and no reference frequencies (no DFT here)."""
    from mlpkit.validation.report import validate
    from mlpkit.validation.settings import ValidationSettings

    settings = ValidationSettings(nve_steps=1000)

    def run(potential: Potential, out_dir: Path) -> dict[str, int]:
        report = validate(potential, train, test, out_dir=out_dir, settings=settings, progress=False)
        return dict(report.counts)

    return run
