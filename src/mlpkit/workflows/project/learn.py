"""Stage 5 of ``mlpkit run``: the active-learning loop on the project's data, in the same run directory; its
final committee becomes ``models/final`` and is validated."""

from __future__ import annotations

import os
from typing import Any

from mlpkit.config.active_learning import ActiveLearningConfig
from mlpkit.errors import MlpkitError
from mlpkit.files import atomic_write_images, jsonable
from mlpkit.workflows.active_learning.loop import run_active_learning
from mlpkit.workflows.engine import Step
from mlpkit.workflows.project.context import START_FILE, ProjectRun, fit_settings, load_json
from mlpkit.workflows.project.validate import validate_potential


def active_learning_config(run: ProjectRun):
    """The :class:`mlpkit.config.active_learning.ActiveLearningConfig` this project's sections describe.

    Its initial set is the pipeline's labelled initial set (``configs/initial-labelled.extxyz``, every frame) and
    its test set the pipeline's labelled test set, and it runs in the same directory (same dataset store): the
    loop starts where the pipeline is and labels nothing twice.
    """
    cfg = run.cfg
    al = cfg.active_learning
    structure = cfg.system.structure
    spath = cfg.resolve(structure)
    if run.path("configs", START_FILE).is_file():
        spath = run.path("configs", START_FILE)  # a periodic box as the sample stage equilibrated it
    n_initial = run.state.result("label").get("train", 0) + run.state.result("label").get("valid", 0)
    data = {
        "name": cfg.project.name,
        "structure": str(spath) if spath.exists() else structure,
        "reference": {"method": cfg.reference.method, **cfg.reference.options},
        "driver": cfg.sampling.driver_spec(cfg.base_dir),
        "seed": cfg.project.seed,
        "max_iterations": al.max_iterations,
        "label_budget": max(al.label_budget, n_initial),
        "initial": {"n": n_initial, "sampling": "file", "file": str(run.path("configs", "initial-labelled.extxyz"))},
        "explore": {**al.explore.model_dump(), "temperatures": cfg.exploration_temperatures()},
        "trust": al.trust.model_dump(),
        "select": al.select.model_dump(),
        "committee": {
            "family": cfg.model.family,
            "n_members": cfg.model.committee.n_members,
            "bootstrap": cfg.model.committee.bootstrap,
            "warm_start": cfg.model.committee.warm_start,
            "hyperparameters": cfg.model.hyperparameters,
            "fit": fit_settings(run),
            **(
                {"members": [mm.model_dump() for mm in cfg.model.committee.members]}
                if cfg.model.committee.members
                else {}
            ),
        },
        "stop": al.stop.model_dump(),
        "test": {"file": str(run.path("configs", "test-labelled.extxyz"))},
        "baseline": al.baseline.model_dump(),
        "physics": {
            **al.physics.model_dump(),
            "enabled": al.physics.enabled and cfg.validation.enabled,
            # the project's checklist, with the loop's own overrides on top
            "validation": {**cfg.validation.model_dump(exclude={"enabled"}), **al.physics.validation},
        },
        "execution": {
            "workers": max(cfg.execution.workers, 1),
            "scheduler": cfg.execution.scheduler,
            "jobqueue": None if cfg.execution.jobqueue is None else cfg.execution.jobqueue.model_dump(),
            "train_processes": cfg.execution.fit_processes(),
        },
    }
    return ActiveLearningConfig.from_dict(data, where="active_learning (from the project configuration)")


class Learn(Step):
    name = "learn"
    description = "active learning, then the checklist of the final committee"
    sections = ("active_learning",)

    def run(self, run: ProjectRun) -> dict:
        """Active learning from the pipeline's data; its final committee becomes models/final and is validated."""
        import shutil

        out: dict = {}
        if run.cfg.active_learning.enabled:
            method = run.labeler.method
            initial = [a for a in run.dataset.to_atoms(method=method, source="initial")]
            atomic_write_images(run.path("configs", "initial-labelled.extxyz"), initial)
            atomic_write_images(run.path("configs", "test-labelled.extxyz"), run.labelled("test"))
            al_cfg = active_learning_config(run)
            log = (lambda msg: run.say(msg)) if run.progress else None
            summary = run_active_learning(al_cfg, run.run_dir, progress=run.progress, log=log)
            out = _summary_dict(summary)
            out.pop("run_dir", None)
            last_dir = run.path(f"iter-{int(summary.iterations):03d}", "model")
            if not (last_dir / "model.json").exists():
                raise MlpkitError(f"the active-learning run left no model in {last_dir}")
            choice = choose_model(run, int(summary.iterations), method)
            out["model_choice"] = choice
            final_dir = run.path(f"iter-{choice['chosen_iteration']:03d}", "model")
            metrics = load_json(final_dir.parent / "metrics.json") or {}
            out["trust"] = metrics.get("trust", {})
            out["final_model"] = str(final_dir)
            out["method"] = method
            src = final_dir
        else:
            src = run.path("models", "initial")
            out["skipped"] = "active_learning.enabled is false: the first committee is the final one"
        dst = run.path("models", "final")
        tmp = run.path("models", ".final.tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(src, tmp)
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
        run._cache.pop("model-final", None)
        if run.cfg.validation.enabled and run.cfg.active_learning.enabled:
            run.say("checklist of the final committee")
            out["validation"] = validate_potential(run, "final")
        elif run.cfg.validation.enabled:
            out["validation"] = run.state.result("validate")
        out["per_temperature"] = per_temperature(run, "final")
        out["physics_rounds"] = physics_rounds(run) if run.cfg.active_learning.enabled else []
        return out


#: how the model handed over is chosen among the iterations' models (recorded in the report)
CHOICE_RULE = (
    "among the iterations whose physics checklist (run when the loop stopped) passed, the lowest force MAE on every "
    "validation label of the finished run (never trained on; with fit.keep = last it does not steer the weights "
    "either); if none passed, the lowest such MAE of all; ties to the later iteration"
)


def _checklist(run: ProjectRun, i: int) -> str | None:
    """'pass' / 'fail: a, b' for iteration ``i``'s stop-time checklist (its physics.json), None where none ran."""
    record = load_json(run.path(f"iter-{i:03d}", "physics.json"))
    if not record or not record.get("checks"):
        return None
    failed = sorted(k for k, c in record["checks"].items() if c.get("status") == "FAIL")
    return "fail: " + ", ".join(failed) if failed else "pass"


def pick_iteration(rows: list[dict]) -> int:
    """The iteration :data:`CHOICE_RULE` picks from rows of ``iteration``, ``valid_force_mae``, ``checklist``."""
    passed = [r for r in rows if r.get("checklist") == "pass"]
    return int(min(passed or rows, key=lambda r: (r["valid_force_mae"], -r["iteration"]))["iteration"])


def choose_model(run: ProjectRun, last: int, method: str) -> dict:
    """Score every iteration's model on the run's final validation labels and pick one by :data:`CHOICE_RULE`."""
    from mlpkit.potentials import load_potential
    from mlpkit.validation.metrics import evaluate

    valid = run.dataset.to_atoms(method=method, split="valid")
    rows = []
    for i in range(last + 1):
        model_dir = run.path(f"iter-{i:03d}", "model")
        if not (model_dir / "model.json").exists() or not valid:
            continue
        metrics, _ = evaluate(load_potential(model_dir), valid)
        rows.append(
            {
                "iteration": i,
                "valid_force_mae": metrics["forces_mae"],
                "valid_energy_mae": metrics["energy_mae_per_atom"],
                "checklist": _checklist(run, i),
            }
        )
    chosen = pick_iteration(rows) if rows else last  # no validation labels: the last model
    return {"rule": CHOICE_RULE, "n_valid": len(valid), "iterations": rows, "chosen_iteration": chosen}


def per_temperature(run: ProjectRun, which: str) -> list[dict]:
    """The test errors of ``models/<which>`` per temperature, with the worst frames (index in the test set);
    also written to ``validation/<which>/per_temperature.json``."""
    from mlpkit.files import atomic_write_json
    from mlpkit.validation.by_temperature import errors_by_temperature

    test = run.labelled("test")
    rows = errors_by_temperature(run.potential(which), test, worst=run.cfg.domain.worst_frames) if test else []
    atomic_write_json(run.path("validation", which, "per_temperature.json"), rows)
    for r in rows:
        t = "no temperature" if r["temperature"] is None else f"{r['temperature']:g} K"
        run.say(
            f"{t}: {r['n']} test frames, force MAE {r['forces_mae'] * 1000:.1f} meV/Å, max error "
            f"{r['forces_max_error'] * 1000:.0f} meV/Å, energy MAE {r['energy_mae_per_atom'] * 1000:.2f} meV/atom"
        )
    return rows


def physics_rounds(run: ProjectRun) -> list[dict]:
    """One row per targeted-label action of the loop's physics checklist: round, iteration, check, labels added,
    and the check's value before (the checklist that failed) and after (the next checklist of the loop, or the
    final one)."""
    from mlpkit.workflows.active_learning.physics import CHECK_ROWS
    from mlpkit.workflows.engine import WorkflowState

    state = WorkflowState(run.path("state.json"))
    steps = sorted(
        (v["result"] for k, v in state.steps.items() if k.endswith(".physics")), key=lambda r: r["iteration"]
    )
    final = load_json(run.path("validation", "final", "validation.json")) or {}
    final_values = {c["key"]: {"status": c["status"], "value": c["value"]} for c in final.get("checks", [])}
    rows = []
    for k, step in enumerate(steps):
        after = steps[k + 1]["checks"] if k + 1 < len(steps) else final_values
        for action in step.get("actions", []):
            keys = CHECK_ROWS[action["check"]][0]
            rows.append(
                {
                    "round": step.get("round"),
                    "iteration": step["iteration"],
                    "check": action["check"],
                    "labels": action["labelled"],
                    "what": action.get("what", ""),
                    "before": {key: step["checks"][key] for key in keys if key in step["checks"]},
                    "after": {key: after[key] for key in keys if key in after},
                }
            )
        if not step.get("actions"):
            keys = [key for kind in step.get("failed", []) for key in CHECK_ROWS[kind][0]]
            rows.append(
                {
                    "round": None,
                    "iteration": step["iteration"],
                    "check": ", ".join(step.get("failed", [])) or "none failed",
                    "labels": 0,
                    "what": step.get("verdict", ""),
                    "before": {key: step["checks"][key] for key in keys if key in step["checks"]},
                    "after": {},
                }
            )
    return rows


def _summary_dict(summary: Any) -> dict:
    if hasattr(summary, "to_dict"):
        return jsonable(summary.to_dict())
    import dataclasses

    if dataclasses.is_dataclass(summary):
        return jsonable(dataclasses.asdict(summary))
    return jsonable(dict(summary))
