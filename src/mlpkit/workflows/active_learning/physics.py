"""Validation in the stopping rule: when the loop would stop, the physics checklist of the iteration's committee
runs; a failed check that sampling can fix sends the loop back with configurations aimed at it.

    vibrations     harmonic frequencies off → displacements along the normal modes around the committee's own
                   minimum and around the reference method's minimum (classical Boltzmann amplitudes)
    nve            NVE unstable or drifting → frames of an NVE run on the committee from the check's start where
                   the calibrated uncertainty left the trusted region (lower ≤ σ < upper)
    max_force      a force above the bar → configurations near the offending test frames (short independent
                   driver runs started there; the test frames themselves stay in the test set), or the NVE frames
                   when only the NVE trajectory went there
    extrapolation  test frames outside the training distribution → configurations near those frames, as above
    test_errors    test error above the ratio bar → driver-MD frames at the temperatures whose own test error
                   breaks the bar (the per-temperature split), the most uncertain of a pool

Each round is one step of the resume engine (``iterN.physics`` in state.json): the checklist goes to
``iter-NNN/validation/``, the targeted configurations to ``iter-NNN/physics/targeted.extxyz`` (written before any
label, reused on resume, so a killed round labels exactly what is still pending), labels to the dataset under
source ``physics-<check>-iter<N>``. Rounds and labels are capped (``physics.max_rounds``, ``max_labels``).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError
from mlpkit.files import atomic_write_images, atomic_write_json, read_images
from mlpkit.validation.by_temperature import errors_by_temperature, frame_temperature
from mlpkit.workflows.active_learning.context import ITER_SEED_STRIDE
from mlpkit.workflows.active_learning.labelling import add_and_label
from mlpkit.workflows.engine import Step

#: checklist rows behind each fixable check kind, and the statuses that count as failed
CHECK_ROWS = {
    "vibrations": (("vibrations",), ("FAIL",)),
    "nve": (("nve_stability", "nve_energy"), ("FAIL",)),
    "max_force": (("max_force",), ("FAIL",)),
    "extrapolation": (("extrapolation",), ("FAIL", "WARN")),
    "test_errors": (("test_errors",), ("FAIL",)),
}


def failed_kinds(checks: list[dict], kinds: list[str]) -> list[str]:
    """The fixable check kinds (in ``kinds`` order) whose checklist rows failed."""
    status = {c["key"]: c["status"] for c in checks}
    out = []
    for kind in kinds:
        keys, bad = CHECK_ROWS[kind]
        if any(status.get(key) in bad for key in keys):
            out.append(kind)
    return out


def check_values(checks: list[dict]) -> dict:
    """{row key: {status, value}} of every checklist row (the report's before/after columns)."""
    return {c["key"]: {"status": c["status"], "value": c["value"]} for c in checks}


class PhysicsCheck(Step):
    description = "physics checklist of the committee; targeted labels for the failed checks"

    def __init__(self, i: int):
        self.i = i
        self.name = f"iter{i}.physics"

    def run(self, run) -> dict:
        p = run.cfg.physics
        i = self.i
        earlier = [run.state.result(f"iter{j}.physics") for j in range(i) if run.state.done(f"iter{j}.physics")]
        rounds = sum(1 for r in earlier if r.get("continue"))
        used = sum(int(r.get("labels_added", 0)) for r in earlier)
        committee = run.load_committee(i)
        report = checklist(run, committee, i)
        checks = report["checks"]
        failed = failed_kinds(checks, p.checks)
        result = {
            "iteration": i,
            "checks": check_values(checks),
            "failed": failed,
            "actions": [],
            "labels_added": 0,
            "continue": False,
            "validation": str(run.iter_dir(i) / "validation"),
            "train_forces_mae": ((report.get("metrics") or {}).get("train") or {}).get("forces_mae"),
        }
        room = p.max_labels - used
        if not failed:
            result["verdict"] = "every check that sampling can fix passes"
        elif rounds >= p.max_rounds:
            result["verdict"] = f"{', '.join(failed)} failed; round cap ({p.max_rounds}) reached"
        elif room <= 0:
            result["verdict"] = f"{', '.join(failed)} failed; targeted-label cap ({p.max_labels}) reached"
        else:
            actions = targeted_round(run, committee, i, failed, report, room)
            added = sum(a["labelled"] for a in actions)
            result.update({"actions": actions, "labels_added": added, "round": rounds + 1, "continue": added > 0})
            result["verdict"] = (
                f"round {rounds + 1}: {', '.join(failed)} failed; {added} targeted labels, training again"
                if added
                else f"{', '.join(failed)} failed; no targeted configuration could be labelled"
            )
        atomic_write_json(run.iter_dir(i) / "physics.json", result)
        run.log(f"iteration {i}: physics checklist: {result['verdict']}")
        return result


def checklist(run, committee, i: int) -> dict:
    """The validation checklist of ``committee`` (iteration ``i``) on the run's data; validation.json as a dict."""
    from mlpkit.validation import ValidationSettings, validate

    train, valid = run.labelled()
    report = validate(
        committee,
        train,
        run.test or valid or train,
        out_dir=run.iter_dir(i) / "validation",
        settings=ValidationSettings(**run.cfg.physics.validation),
        reference=run.labeler,
        progress=False,
        name=f"iteration {i} committee",
        cache_dir=run.run_dir / "reference-cache",
    )
    return report.to_dict()


def targeted_round(run, committee, i: int, failed: list[str], report: dict, room: int) -> list[dict]:
    """Make (or read back) and label the targeted configurations of one round; one action dict per check."""
    p = run.cfg.physics
    path = run.iter_dir(i) / "physics" / "targeted.extxyz"
    if path.exists():
        images = read_images(path)
    else:
        images = []
        for k, kind in enumerate(failed):
            n = min(p.labels_per_check, room - len(images))
            if n <= 0:
                break
            seed = run.cfg.seed + ITER_SEED_STRIDE * i + 101 * (k + 1)
            try:
                made = MAKERS[kind](run, committee, i, report, n, seed)[:n]
            except InputError as exc:  # e.g. no stable mode to displace along: reported, not fatal
                run.log(f"iteration {i}: no targeted configurations for {kind}: {exc}")
                made = []
            for a in made:
                a.calc = None
                for key in ("source", "method", "mlp_energy", "row_id", "split", "status", "hash"):
                    a.info.pop(key, None)  # a copy of a test frame's bookkeeping would mislabel the new one
                a.info["physics_check"] = kind
            images += made
        atomic_write_images(path, images)
    actions = []
    for k, kind in enumerate(failed):
        group = [a for a in images if a.info.get("physics_check") == kind]
        if not group:
            actions.append({"check": kind, "source": None, "requested": 0, "labelled": 0, "failed": 0})
            continue
        source = f"physics-{kind}-iter{i}"
        run.log(f"iteration {i}: labelling {len(group)} configurations for the failed {kind} check")
        rep = add_and_label(
            run.dataset,
            run.labeler,
            group,
            source=source,
            valid_fraction=run.cfg.select.valid_fraction,
            seed=run.cfg.seed + ITER_SEED_STRIDE * i + 7 * (k + 1),
            **run.cfg.execution.where(),
            progress=run.progress,
        )
        actions.append(
            {
                "check": kind,
                "source": source,
                "requested": len(group),
                "labelled": int(rep["labelled_in_source"]),
                "failed": int(rep["failed_in_source"]),
                "what": group[0].info.get("physics_what", ""),
            }
        )
    return actions


# -- the configurations each failed check asks for ---------------------------------------------------------


def _geometry(run, positions) -> Atoms:
    a = run.structure.copy()
    a.calc = None
    a.positions = np.asarray(positions, dtype=float)
    return a


def vibration_targets(run, committee, i, report, n, seed) -> list[Atoms]:
    """Normal-mode displacements around the committee's minimum (its own Hessian) and the reference's minimum
    (the driver's Hessian there: cheap, and the directions that matter), half each, at
    ``physics.normal_mode_temperature`` (default the lowest exploration temperature)."""
    from mlpkit.sampling import normal_mode_sampling

    vib = report.get("vibrations") or {}
    temp = run.cfg.physics.normal_mode_temperature or min(run.cfg.explore.temperatures)
    out: list[Atoms] = []
    minima = []
    if vib.get("model"):
        minima.append(("model", _geometry(run, vib["model"]["positions"]), committee.calculator))
    if vib.get("reference"):
        minima.append(("reference", _geometry(run, vib["reference"]["positions"]), run.driver.calculator))
    if not minima:
        raise InputError("the frequency check left no minimum geometry")
    for k, (where, atoms, calc) in enumerate(minima):
        m = (n - len(out)) // (len(minima) - k)
        if m <= 0:
            continue
        try:
            frames = normal_mode_sampling(atoms, calc(), m, temp, seed=seed + k)
        except InputError:  # the committee's Hessian has no stable mode: the driver's modes at its minimum
            frames = normal_mode_sampling(atoms, run.driver.calculator(), m, temp, seed=seed + k)
        for f in frames:
            f.info["physics_what"] = f"normal modes at {temp:g} K around the model's and the reference's minima"
            f.info["minimum"] = where
        out += frames
    return out


def nve_targets(run, committee, i, report, n, seed) -> list[Atoms]:
    """Frames of an NVE run on the committee (the check's start, temperature and timestep) where the calibrated
    uncertainty left the trusted region, spread along the run; without such frames the most uncertain ones, and
    for a potential without uncertainty the last frames before the run stopped."""
    from mlpkit.md.dynamics import UncertaintyWatchdog, run_md
    from mlpkit.validation import ValidationSettings

    s = ValidationSettings(**run.cfg.physics.validation)
    trust = run.state.result(f"iter{i}.train").get("trust") or {}
    lower, upper = float(trust.get("lower", 0.0)), float(trust.get("upper", 1e6))
    starts = list(run.test or run.labelled()[0])
    start = starts[min(s.nve_start_index, len(starts) - 1)].copy()
    start.calc = None
    watch = committee.has_uncertainty
    res = run_md(
        start,
        committee.calculator(),
        ensemble="nve",
        temperature=max(s.nve_temperature, 1.0),
        timestep=s.nve_timestep,
        steps=s.nve_steps,
        interval=max(1, s.nve_steps // 200),
        seed=seed,
        # the watchdog records every step past the lower bound and stops the run at the upper one
        watchdog=UncertaintyWatchdog(warn=lower, stop=upper, scale=float(trust.get("scale", 1.0))) if watch else None,
    )
    frames = [f for f in [*res.frames, *res.uncertain_frames] if np.isfinite(f.info.get("uncertainty", np.nan))]
    frames.sort(key=lambda f: int(f.info.get("step", 0)))
    cand = [f for f in frames if lower <= f.info["uncertainty"] < upper]
    if cand:
        pick = [cand[k] for k in np.unique(np.linspace(0, len(cand) - 1, n).round().astype(int))]
        what = f"NVE frames outside the trusted region (σ ≥ {lower:.3g} eV/Å)"
    elif frames:
        pick = sorted(frames, key=lambda f: -f.info["uncertainty"])[:n]
        what = "the most uncertain NVE frames (none left the trusted region)"
    else:
        pick = list(res.frames[-n:])
        what = "the last NVE frames before the run stopped (the potential has no uncertainty)"
    for f in pick:
        f.info["physics_what"] = what
    return _physical(run, pick)


def _near(run, frames: list[Atoms], n: int, seed: int, what: str) -> list[Atoms]:
    """One configuration near each of ``frames`` (up to n, spread over them): 10 fs of driver Langevin MD started
    there at the frame's temperature (the hottest exploration temperature when it has none)."""
    from mlpkit.sampling import md_snapshots

    if not frames:
        return []
    pick = [frames[k] for k in np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int))]
    out = []
    for k, f in enumerate(pick):
        start = f.copy()
        start.calc = None
        temp = frame_temperature(f) or max(run.cfg.explore.temperatures)
        snap = md_snapshots(start, run.driver, temperature=temp, steps=20, every=20, thermostat="langevin",
                            timestep=0.5, friction=0.01, seed=seed + k)  # fmt: skip
        for a in snap:
            a.info["physics_what"] = what
        out += snap
    return _physical(run, out)


def force_targets(run, committee, i, report, n, seed) -> list[Atoms]:
    """Near the test frames with a predicted force above the bar; the NVE frames when only the NVE run went there."""
    from mlpkit.validation import ValidationSettings
    from mlpkit.validation.checks import predict_all

    s = ValidationSettings(**run.cfg.physics.validation)
    from mlpkit.data.records import reference_results

    test = list(run.test)
    bad = []
    if test:
        pred = predict_all(committee, test)
        _, f_ref = reference_results(test)
        for k, (f, r) in enumerate(zip(pred.forces, f_ref, strict=True)):
            norm, ref = np.linalg.norm(f, axis=1), np.linalg.norm(r, axis=1)
            if np.any(~(norm <= np.maximum(s.max_force, s.max_force_reference_factor * ref))):
                bad.append(test[k])  # the check's own rule: above the bar and well above the reference
    if bad:
        return _near(run, bad, n, seed, f"near test frames with a predicted force above {s.max_force:g} eV/Å")
    return nve_targets(run, committee, i, report, n, seed)


def extrapolation_targets(run, committee, i, report, n, seed) -> list[Atoms]:
    """Near the test frames the extrapolation check found outside the training distribution."""
    row = next((c for c in report["checks"] if c["key"] == "extrapolation"), {})
    idx = (row.get("details") or {}).get("configs_outside") or []
    frames = [run.test[k] for k in idx if k < len(run.test)]
    return _near(run, frames, n, seed, "near test frames outside the training distribution")


def temperature_targets(run, committee, i, report, n, seed) -> list[Atoms]:
    """More data where the per-temperature split breaks the test/train bar: at each temperature whose own test
    force MAE exceeds ratio x the training MAE (and the floor), or the worst one, a driver Langevin pool of 4 x its
    share, of which the most uncertain frames are labelled."""
    from mlpkit.sampling import md_snapshots
    from mlpkit.validation import ValidationSettings
    from mlpkit.validation.checks import predict_all

    s = ValidationSettings(**run.cfg.physics.validation)
    train_mae = float(((report.get("metrics") or {}).get("train") or {}).get("forces_mae", 0.0))
    split = [r for r in errors_by_temperature(committee, run.test, worst=0) if r["temperature"] is not None]
    if not split:
        split = [{"temperature": max(run.cfg.explore.temperatures), "forces_mae": float("inf")}]
    bar = max(s.test_train_ratio_max * train_mae, s.ratio_floor_forces)
    temps = [r["temperature"] for r in split if r["forces_mae"] > bar]
    if not temps:
        temps = [max(split, key=lambda r: r["forces_mae"])["temperature"]]
    out: list[Atoms] = []
    for k, temp in enumerate(temps):
        m = (n - len(out)) // (len(temps) - k)
        if m <= 0:
            continue
        pool = md_snapshots(run.structure, run.driver, temperature=temp, steps=(20 + 4 * m) * 20, every=20,
                            thermostat="langevin", timestep=0.5, friction=0.01, seed=seed + k)[20:]  # fmt: skip
        pool = _physical(run, pool)
        score = predict_all(committee, pool).score()
        order = np.argsort(-score) if score is not None else np.arange(len(pool))
        for j in order[:m]:
            pool[j].info["physics_what"] = f"driver MD at the temperatures failing the {s.test_train_ratio_max:g}x bar"
            out.append(pool[j])
    return out


def _physical(run, frames: list[Atoms]) -> list[Atoms]:
    """The frames the reference method accepts (no collapsed atoms), as bare copies."""
    out = []
    for f in frames:
        a = f.copy()
        a.calc = None
        try:
            run.labeler.check(a)
        except InputError:
            continue
        out.append(a)
    return out


MAKERS = {
    "vibrations": vibration_targets,
    "nve": nve_targets,
    "max_force": force_targets,
    "extrapolation": extrapolation_targets,
    "test_errors": temperature_targets,
}
