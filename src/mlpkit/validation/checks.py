"""The cheap checks of the quality checklist: errors, invariances, gradients, force magnitude.

Each check returns :class:`CheckResult` rows: a status (PASS/FAIL/WARN/SKIP), the measured value in
words, the bar it was held to, and every number in ``details`` (for validation.json). The expensive ones
(NVE, vibrations, extrapolation) live in their own modules and return the same record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from ase import Atoms

from mlpkit.potentials.base import Potential, Prediction
from mlpkit.validation.metrics import ErrorTable, evaluate
from mlpkit.validation.settings import ValidationSettings

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"
STATUSES = (PASS, FAIL, WARN, SKIP)


@dataclass
class CheckResult:
    """One row of the checklist.

    key:       stable identifier (``train_errors``, ``nve_energy``, ...), the key in validation.json
    title:     what a reader sees in the table
    status:    PASS, FAIL, WARN or SKIP
    value:     the measured value(s), formatted with units
    threshold: the bar, formatted with units
    details:   every number behind the value (JSON-able)
    message:   one sentence of explanation where the status needs one
    seconds:   wall time the check took
    figures:   PNG files (names relative to the report directory) that illustrate the check
    """

    key: str
    title: str
    status: str
    value: str
    threshold: str
    details: dict = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0
    figures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def _bare(atoms: Atoms) -> Atoms:
    """A copy without calculator (and without the reference results it carries)."""
    out = atoms.copy()
    out.calc = None
    return out


def predict_all(potential: Potential, images: Sequence[Atoms], batch_size: int = 64) -> Prediction:
    """Predict many configurations in batches and merge the results (uncertainties kept if given)."""
    preds = [potential.predict(list(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
    return Prediction.concatenate(preds)


def _spread_indices(n_total: int, n: int) -> np.ndarray:
    """``n`` indices spread evenly over ``range(n_total)`` (deterministic, covers the whole set)."""
    n = min(n, n_total)
    return np.unique(np.linspace(0, n_total - 1, n).round().astype(int))


# -- 1. errors ---------------------------------------------------------------------------------------


def check_errors(train_metrics: dict, test_metrics: dict, settings: ValidationSettings) -> list[CheckResult]:
    """Training error against the source's bars, and test error within ``test_train_ratio_max`` of it.

    ``*_metrics`` are :func:`mlpkit.validation.metrics.evaluate` dicts (eV/atom, eV/Å).
    """
    s = settings
    e_tr = train_metrics["energy_mae_per_atom"] * 1000  # meV/atom
    f_tr = train_metrics["forces_mae"]  # eV/Å
    ok = e_tr < s.train_energy_mae_max and f_tr < s.train_forces_mae_max
    rows = [
        CheckResult(
            key="train_errors",
            title="Training error",
            status=PASS if ok else FAIL,
            value=f"E MAE {e_tr:.3g} meV/atom, F MAE {f_tr * 1000:.3g} meV/Å "
            f"(RMSE {train_metrics['energy_rmse_per_atom'] * 1000:.3g} / {train_metrics['forces_rmse'] * 1000:.3g}; "
            f"max F error {train_metrics['forces_max_error'] * 1000:.3g} meV/Å)",
            threshold=f"E < {s.train_energy_mae_max:g} meV/atom, F < {s.train_forces_mae_max * 1000:g} meV/Å",
            details=train_metrics,
            message="" if ok else "the potential does not fit its own training data to the checklist's accuracy",
        )
    ]
    e_te = test_metrics["energy_mae_per_atom"] * 1000
    f_te = test_metrics["forces_mae"]
    ratio_e = e_te / e_tr if e_tr > 0 else float("inf")
    ratio_f = f_te / f_tr if f_tr > 0 else float("inf")
    ok_e = ratio_e <= s.test_train_ratio_max or e_te <= s.ratio_floor_energy
    ok_f = ratio_f <= s.test_train_ratio_max or f_te <= s.ratio_floor_forces
    bad = [name for name, good in (("energy", ok_e), ("forces", ok_f)) if not good]
    rows.append(
        CheckResult(
            key="test_errors",
            title="Test error vs training (overfitting)",
            status=PASS if not bad else FAIL,
            value=f"E MAE {e_te:.3g} meV/atom ({ratio_e:.2f}x train), F MAE {f_te * 1000:.3g} meV/Å "
            f"({ratio_f:.2f}x train); max F error {test_metrics['forces_max_error'] * 1000:.3g} meV/Å",
            threshold=f"≤ {s.test_train_ratio_max:g}x train (or E ≤ {s.ratio_floor_energy:g} meV/atom, "
            f"F ≤ {s.ratio_floor_forces * 1000:g} meV/Å)",
            details={**test_metrics, "energy_ratio": ratio_e, "forces_ratio": ratio_f},
            message=""
            if not bad
            else f"test {' and '.join(bad)} error more than {s.test_train_ratio_max:g}x the "
            "training error: overfitted, or the test data lie outside the training data",
        )
    )
    return rows


def error_tables(
    potential: Potential, train: Sequence[Atoms], test: Sequence[Atoms], batch_size: int = 64
) -> tuple[dict, ErrorTable, dict, ErrorTable]:
    """(train metrics, train table, test metrics, test table) — see :func:`mlpkit.validation.metrics.evaluate`."""
    m_tr, t_tr = evaluate(potential, list(train), batch_size=batch_size)
    m_te, t_te = evaluate(potential, list(test), batch_size=batch_size)
    return m_tr, t_tr, m_te, t_te


# -- 4. invariances ----------------------------------------------------------------------------------


def _rotation_matrices(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3, 3) uniformly random proper rotations."""
    from scipy.spatial.transform import Rotation

    return Rotation.random(n, random_state=rng).as_matrix().reshape(n, 3, 3)


def check_invariances(potential: Potential, images: Sequence[Atoms], settings: ValidationSettings) -> list[CheckResult]:
    """Rotate, translate and permute like atoms of a few test configurations; compare energies and forces.

    Rotation: positions rotate about the centroid (the cell rotates with them for periodic systems);
    forces must rotate with the frame, F' = F Rᵀ. Translation: a random shift (wrapped into the cell
    for periodic systems); energies and forces unchanged. Permutation: atoms of each element shuffled;
    the energy unchanged, forces permuted alike. Errors: |ΔE| per atom (eV/atom) and the largest change
    of a force component (eV/Å), over all probed configurations.
    """
    s = settings
    rng = np.random.default_rng(s.invariance_seed)
    picks = [_bare(images[i]) for i in _spread_indices(len(images), s.invariance_configs)]
    base = predict_all(potential, picks, s.batch_size)
    rots = _rotation_matrices(len(picks), rng)

    rotated, translated, permuted, perms = [], [], [], []
    for atoms, rot in zip(picks, rots, strict=True):
        a = atoms.copy()
        centre = a.positions.mean(axis=0)
        a.positions = (a.positions - centre) @ rot.T + centre
        if a.pbc.any():
            a.set_cell(a.cell[:] @ rot.T, scale_atoms=False)
        rotated.append(a)

        b = atoms.copy()
        b.positions = b.positions + rng.uniform(-2.0, 2.0, size=3)
        if b.pbc.any():
            b.wrap()
        translated.append(b)

        perm = np.arange(len(atoms))
        for z in np.unique(atoms.numbers):
            idx = np.flatnonzero(atoms.numbers == z)
            perm[idx] = rng.permutation(idx)
        perms.append(perm)
        permuted.append(atoms[perm])

    can_permute = any(np.any(p != np.arange(len(p))) for p in perms)
    n_atoms = np.array([len(a) for a in picks])

    def compare(name: str, title: str, images_t: list[Atoms], expected_forces: list[np.ndarray]) -> CheckResult:
        pred = predict_all(potential, images_t, s.batch_size)
        de = np.abs(pred.energy - base.energy) / n_atoms
        df = np.array([np.max(np.abs(f - g)) for f, g in zip(pred.forces, expected_forces, strict=True)])
        ok = bool(np.all(de <= s.invariance_energy_tol) and np.all(df <= s.invariance_forces_tol))
        return CheckResult(
            key=name,
            title=title,
            status=PASS if ok else FAIL,
            value=f"max |ΔE| {de.max():.2e} eV/atom, max |ΔF| {df.max():.2e} eV/Å ({len(picks)} configs)",
            threshold=f"|ΔE| ≤ {s.invariance_energy_tol:.0e} eV/atom, |ΔF| ≤ {s.invariance_forces_tol:.0e} eV/Å",
            details={"energy_errors_per_atom": de, "forces_max_errors": df, "n_configs": len(picks)},
            message="" if ok else f"the potential is not {title.split()[0].lower()} invariant",
        )

    rows = [
        compare(
            "rotation_invariance",
            "Rotation invariance (forces rotate with the frame)",
            rotated,
            [f @ rot.T for f, rot in zip(base.forces, rots, strict=True)],
        ),
        compare("translation_invariance", "Translation invariance", translated, list(base.forces)),
    ]
    if can_permute:
        rows.append(
            compare(
                "permutation_invariance",
                "Permutation invariance (like atoms)",
                permuted,
                [f[p] for f, p in zip(base.forces, perms, strict=True)],
            )
        )
    else:
        rows.append(
            CheckResult(
                key="permutation_invariance",
                title="Permutation invariance (like atoms)",
                status=SKIP,
                value="no element occurs twice",
                threshold="",
                message="nothing to permute",
            )
        )
    return rows


# -- 5. forces are gradients -------------------------------------------------------------------------


def check_gradients(potential: Potential, images: Sequence[Atoms], settings: ValidationSettings) -> CheckResult:
    """Central finite differences of the predicted energy against the predicted forces.

    For ``gradient_configs`` test configurations and ``gradient_components`` random Cartesian components
    of each: F_fd = −(E(x + h) − E(x − h)) / 2h. A component passes when |F_fd − F| ≤ atol + rtol·|F|.
    All displaced configurations go through one batched predict.
    """
    s = settings
    rng = np.random.default_rng(s.gradient_seed)
    picks = [_bare(images[i]) for i in _spread_indices(len(images), s.gradient_configs)]
    base = predict_all(potential, picks, s.batch_size)
    displaced, where = [], []
    for ci, atoms in enumerate(picks):
        n3 = 3 * len(atoms)
        for comp in rng.choice(n3, size=min(s.gradient_components, n3), replace=False):
            atom, axis = divmod(int(comp), 3)
            for sign in (+1, -1):
                a = atoms.copy()
                a.positions[atom, axis] += sign * s.gradient_step
                displaced.append(a)
            where.append((ci, atom, axis))
    energies = predict_all(potential, displaced, s.batch_size).energy.reshape(-1, 2)
    fd = -(energies[:, 0] - energies[:, 1]) / (2 * s.gradient_step)
    analytic = np.array([base.forces[ci][atom, axis] for ci, atom, axis in where])
    err = np.abs(fd - analytic)
    tol = s.gradient_atol + s.gradient_rtol * np.abs(analytic)
    ok = bool(np.all(err <= tol))
    rel = float(np.sqrt(np.mean(err**2)) / max(np.sqrt(np.mean(analytic**2)), 1e-12))
    return CheckResult(
        key="force_gradient",
        title="Forces are −dE/dx (finite differences)",
        status=PASS if ok else FAIL,
        value=f"max |F_fd − F| {err.max():.2e} eV/Å, relative RMS {rel:.1e} ({len(where)} components)",
        threshold=f"|ΔF| ≤ {s.gradient_atol:g} eV/Å + {s.gradient_rtol:g}·|F| (h = {s.gradient_step:g} Å)",
        details={
            "finite_difference": fd,
            "analytic": analytic,
            "abs_errors": err,
            "relative_rms": rel,
            "components": [list(w) for w in where],
            "step": s.gradient_step,
        },
        message="" if ok else "the forces are not the negative gradient of the energy: MD will not conserve energy",
    )


# -- 6. force magnitude ------------------------------------------------------------------------------


def check_max_force(
    test_table: ErrorTable, settings: ValidationSettings, trajectory_max_force: float | None = None
) -> CheckResult:
    """No predicted per-atom force (norm, eV/Å) above ``max_force`` along the NVE run, nor on the test set where the
    reference force on that atom is not itself that large (above ``max_force_reference_factor`` x the reference)."""
    pred = np.linalg.norm(test_table.forces_pred.reshape(-1, 3), axis=1)
    ref = np.linalg.norm(test_table.forces_ref.reshape(-1, 3), axis=1)
    test_max = float(pred.max())
    limit = np.maximum(settings.max_force, settings.max_force_reference_factor * ref)
    outliers = int(np.sum(~(pred <= limit)))  # NaN counts as an outlier
    traj_ok = trajectory_max_force is None or (
        np.isfinite(trajectory_max_force) and trajectory_max_force <= settings.max_force
    )
    ok = bool(np.isfinite(test_max) and outliers == 0 and traj_ok)
    value = f"test set {test_max:.3g} eV/Å (reference {float(ref.max()):.3g}; {outliers} atom(s) beyond the bar)"
    if trajectory_max_force is not None:
        value += f", NVE trajectory {trajectory_max_force:.3g} eV/Å"
    return CheckResult(
        key="max_force",
        title="No force above the bar",
        status=PASS if ok else FAIL,
        value=value,
        threshold=f"|F| ≤ {settings.max_force:g} eV/Å (test set: or ≤ {settings.max_force_reference_factor:g}x the "
        "reference force)",
        details={
            "test_max_force": test_max,
            "test_max_reference_force": float(ref.max()),
            "test_outlier_atoms": outliers,
            "trajectory_max_force": trajectory_max_force,
        },
        message="" if ok else "forces this large mean a broken or wildly extrapolating potential",
    )
