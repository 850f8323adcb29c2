"""``mlpkit screen``: rank candidate structures with a (universal) potential, label the top k with a reference method.

Steps (each recorded in ``OUT/state.json`` by :mod:`mlpkit.workflows.engine`; a killed run started again skips the
finished ones and repeats no calculation):

``model-0``     every candidate (and elemental reference structure) relaxed (``relax``; with the cell through
                ``FrechetCellFilter`` for periodic ones) or single-pointed with the model. Each result is one row of
                the store the moment it is computed (method ``model:NAME[:relax-...]``, source ``screen-candidate`` /
                ``screen-reference``, the relaxed structure, its energy and forces, the candidate's name and hash
                in the row's info): the store is the per-candidate cache, so a killed model step resumes too.
``select-R``    the top k by the score among candidates not yet labelled (round R's model).
``label-R``     those k structures (model-relaxed) added to the store as ``pending`` for the reference method
                (source ``screen-top``) and labelled through :mod:`mlpkit.execution` (Dask, one transaction each).
``finetune-R``  (``rounds`` > 1, R ≥ 1) the model fine-tuned on every reference label so far (``pot.fit``), saved to
                ``OUT/models/round-R``; ``model-R`` re-scores every candidate with it (single points on the
                round-0 structures, cached in the store the same way).
``report``      ``screen.json`` and ``report.html`` (:mod:`mlpkit.workflows.screen.report`).

The settings are :mod:`mlpkit.workflows.screen.settings`, the top-k pick :mod:`mlpkit.workflows.screen.selection`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from mlpkit.data.dataset import Dataset
from mlpkit.errors import InputError
from mlpkit.execution import label_pending
from mlpkit.labelers.base import Labeler
from mlpkit.potentials import Potential, load_potential
from mlpkit.workflows.engine import Step, WorkflowState, cumulative_fingerprints, run_step
from mlpkit.workflows.screen.candidates import (
    QUANTITIES,
    Candidate,
    Score,
    elemental_energies,
    parse_references,
    quantities,
    read_candidates,
)
from mlpkit.workflows.screen.relax import relax
from mlpkit.workflows.screen.selection import pick_top
from mlpkit.workflows.screen.settings import OPTIMIZERS, ScreenSettings

STATE_FILE = "state.json"
SOURCE, REF_SOURCE, TOP_SOURCE = "screen-candidate", "screen-reference", "screen-top"


class _Fn(Step):
    def __init__(self, name: str, description: str, fn: Callable[[], dict], sections: tuple[str, ...]):
        self.name, self.description, self.fn, self.sections = name, description, fn, sections

    def run(self, ctx: Any) -> dict:
        return self.fn()


class Screen:
    """One screening run: candidates, store, labeler, model and the run directory (see the module docstring)."""

    def __init__(
        self,
        candidates: str | os.PathLike,
        labeler: Labeler,
        db: str | os.PathLike,
        out_dir: str | os.PathLike,
        settings: ScreenSettings,
        *,
        potential: Potential | None = None,
        progress: bool = True,
        say: Callable[[str], None] = lambda _: None,
    ):
        s = self.settings = settings
        self.say, self.progress, self.labeler = say, progress, labeler
        s.check()
        self.score = Score(s.score)
        self.candidates, self.notes = read_candidates(candidates)
        n, budget = len(self.candidates), s.top * s.rounds
        if budget > n:
            raise InputError(
                f"--top {s.top}" + (f" x --rounds {s.rounds}" if s.rounds > 1 else "")
                + f" asks for {budget} reference labels but there are only {n} candidates: choose a smaller --top"
            )  # fmt: skip
        self.ref_numbers = parse_references(s.references) if not _is_path(s.references) else None
        self.ref_structures: list[Candidate] = read_candidates(s.references)[0] if _is_path(s.references) else []
        for c in self.candidates + self.ref_structures:
            try:
                labeler.check(c.atoms)
            except InputError as exc:
                raise type(exc)(f"candidate {c.name}: {exc}") from exc
        refs_known = self.ref_numbers is not None or bool(self.ref_structures)
        names = set(QUANTITIES) - ({"formation_energy_per_atom"} if not refs_known else set())
        if not all(c.atoms.pbc.all() for c in self.candidates):
            names.discard("volume_per_atom")
        names |= set.intersection(*(set(c.info) for c in self.candidates))
        self.score.check_names(names, needs_references=not refs_known)
        if self.ref_numbers is not None:
            missing = {sym for c in self.candidates for sym in c.atoms.get_chemical_symbols()} - set(self.ref_numbers)
            if missing and "formation_energy_per_atom" in self.score.names:
                raise InputError(f"--references has no energy for {', '.join(sorted(missing))}")
        self._potential = potential
        self.model_name = potential.family if potential is not None else _model_name(s.model)
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.dataset = Dataset(db)
        self.state = WorkflowState(self.out / STATE_FILE)
        self.method0 = f"model:{self.model_name}" + (
            f":relax-{s.optimizer}-fmax{s.fmax:g}-steps{s.max_steps}" if s.relax else ""
        )
        self._models: dict[int, Potential] = {}

    # -- the workflow ---------------------------------------------------------------------------------------

    def config(self) -> dict:
        s = self.settings
        return {
            "candidates": sorted(c.hash for c in self.candidates),
            "references": {"numbers": self.ref_numbers, "structures": sorted(c.hash for c in self.ref_structures)},
            "model": {"name": self.model_name, "method": self.method0},
            "score": {"score": s.score, "distinct": s.distinct},
            "label": {"method": self.labeler.method, "top": s.top},
            "fit": s.fit,
        }

    def steps(self) -> list[Step]:
        steps: list[Step] = [_Fn("model-0", "model energies", lambda: self.model_step(0), ("candidates", "model"))]
        for r in range(self.settings.rounds):
            if r > 0:
                steps.append(_Fn(f"finetune-{r}", "fine-tune on the labels", lambda r=r: self.finetune(r), ("fit",)))
                steps.append(_Fn(f"model-{r}", "re-score", lambda r=r: self.model_step(r), ()))
            steps.append(_Fn(f"select-{r}", "choose the top k", lambda r=r: self.select(r), ("score", "label")))
            steps.append(_Fn(f"label-{r}", "reference labels", lambda r=r: self.label(r), ("references",)))
        steps.append(_Fn("report", "report", self.report_step, ()))
        return steps

    def run(self) -> dict:
        steps = self.steps()
        self.fingerprints = cumulative_fingerprints(steps, self.config())
        for note in self.notes:
            self.say(note)
        for step in steps:
            if self.state.done(step.name, self.fingerprints[step.name]):
                self.say(f"{step.name}: done earlier")
                continue
            self.say(f"{step.name}: {step.description}")
            run_step(step, self, self.state, self.fingerprints[step.name])
        from mlpkit.files import read_json
        from mlpkit.workflows.screen.report import RESULT_FILE

        return read_json(self.out / RESULT_FILE)

    # -- model ----------------------------------------------------------------------------------------------

    def method(self, r: int) -> str:
        return self.method0 if r == 0 else f"{self.method0}@round{r}-{self.fingerprints[f'finetune-{r}'][:8]}"

    def potential(self, r: int) -> Potential:
        if r not in self._models:
            if r > 0:
                self._models[r] = load_potential(self.out / "models" / f"round-{r}")
            elif self._potential is not None:
                self._models[0] = self._potential
            else:
                self.say(f"loading {self.settings.model}")
                self._models[0] = load_potential(self.settings.model)
        return self._models[r]

    def model_results(self, r: int) -> dict[str, dict]:
        """Per candidate hash: the store row of round ``r``'s model result (row id, energy or NaN, relaxed hash)."""
        out = {}
        for row in self.dataset.rows(method=self.method(r)):
            info = row.get("data", {}).get("info", {})
            energy = row.get("energy") if row.status == "labelled" else None
            out[info.get("candidate_hash", "")] = {
                "row_id": row.id,
                "energy": math.nan if energy is None else float(energy),
                "structure_hash": row.hash,
                "relax_steps": info.get("relax_steps"),
                "error": row.get("error"),
            }
        return out

    def model_step(self, r: int) -> dict:
        """Model energies of every candidate not cached in the store; each written the moment it is computed."""
        s = self.settings
        cached = self.model_results(r)
        todo = [c for c in self.candidates + self.ref_structures if c.hash not in cached]
        self.say(f"{self.method(r)}: {len(cached)} cached, {len(todo)} to compute")
        if not todo:
            return {"computed": 0, "cached": len(cached)}
        pot = self.potential(r)
        base = self.model_results(0) if r > 0 else {}
        t0, last = time.perf_counter(), 0.0
        for i, cand in enumerate(todo):
            atoms = self.dataset.get_atoms(base[cand.hash]["row_id"]) if r > 0 else cand.atoms.copy()
            info = {"candidate": cand.name, "candidate_hash": cand.hash, "model": self.model_name, **cand.info}
            try:
                if s.relax and r == 0:
                    atoms, energy, forces, steps = relax(atoms, pot, s.fmax, s.max_steps, s.optimizer)
                    info["relax_steps"] = steps
                else:
                    pred = pot.predict([atoms])
                    energy, forces = float(pred.energy[0]), np.asarray(pred.forces[0])
                if not (math.isfinite(energy) and np.all(np.isfinite(forces))):
                    raise ValueError(f"non-finite model result (energy {energy})")
                error = None
            except Exception as exc:  # one structure the model cannot handle must not stop the screen
                energy, forces, error = math.nan, None, f"{type(exc).__name__}: {exc}"
            self._store_model(atoms, energy, forces, info, r, cand in self.ref_structures, error)
            now = time.perf_counter() - t0
            if self.progress and (now - last > 10 or i + 1 == len(todo)):
                last = now
                eta = now / (i + 1) * (len(todo) - i - 1)
                self.say(f"  {i + 1}/{len(todo)} in {now:.0f} s (about {eta:.0f} s left)")
        return {"computed": len(todo), "cached": len(cached), "seconds": time.perf_counter() - t0}

    def _store_model(self, atoms, energy, forces, info, r, is_ref, error) -> None:
        bare = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        bare.info.update(info)
        source = REF_SOURCE if is_ref else SOURCE
        if error is None:
            bare.calc = SinglePointCalculator(bare, energy=energy, forces=forces)
            self.dataset.add([bare], method=self.method(r), source=source, labelled=True)
        else:
            ids = self.dataset.add([bare], method=self.method(r), source=source).ids
            if ids:
                self.dataset.record_failure(ids[0], error)

    # -- scores, selection, labels ----------------------------------------------------------------------------

    def references(self, energies: dict[str, float]) -> dict[str, float] | None:
        """Elemental energies per atom: the numbers given, or those of the reference structures under ``energies``
        (hash → energy), None without references."""
        if self.ref_numbers is not None:
            return self.ref_numbers
        if not self.ref_structures:
            return None
        pairs = [
            (c.atoms, energies[c.hash]) for c in self.ref_structures if math.isfinite(energies.get(c.hash, math.nan))
        ]
        return elemental_energies(pairs)

    def scores(self, energies: dict[str, float]) -> dict[str, float]:
        """Score of every candidate with an energy in ``energies`` (candidate hash → eV)."""
        refs = self.references(energies)
        out = {}
        for c in self.candidates:
            e = energies.get(c.hash, math.nan)
            out[c.hash] = self.score(quantities(c.atoms, e, c.info, refs)) if math.isfinite(e) else math.nan
        return out

    def model_energies(self, r: int) -> dict[str, float]:
        return {h: v["energy"] for h, v in self.model_results(r).items()}

    def selected(self, upto: int) -> list[str]:
        return [h for r in range(upto) for h in self.state.result(f"select-{r}").get("selected", [])]

    def select(self, r: int) -> dict:
        """Round ``r``'s top k by its model among the candidates not picked yet; with ``distinct`` > 0, a candidate
        of the same formula as a pick and a score within ``distinct`` of its score is passed over (a near-duplicate,
        e.g. two starting points relaxed to the same minimum) while others remain."""
        scores = self.scores(self.model_energies(r))
        formula = {c.hash: c.formula for c in self.candidates}
        chosen, passed = pick_top(scores, formula, self.selected(r), self.settings.top, self.settings.distinct)
        return {"selected": chosen, "scores": {h: scores[h] for h in chosen}, "near_duplicates_passed": passed}

    def label(self, r: int) -> dict:
        """Add round ``r``'s picks (model structures) as pending for the reference method and label them on Dask."""
        base = self.model_results(0)
        chosen = self.state.result(f"select-{r}")["selected"]
        if r == 0:
            chosen = chosen + [c.hash for c in self.ref_structures]
        images = []
        for h in chosen:
            atoms = self.dataset.get_atoms(base[h]["row_id"])
            images.append(Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc,
                                info={"candidate": atoms.info.get("candidate"), "candidate_hash": h}))  # fmt: skip
        refs = {c.hash for c in self.ref_structures}
        for source, group in ((TOP_SOURCE, [a for a in images if a.info["candidate_hash"] not in refs]),
                              (REF_SOURCE, [a for a in images if a.info["candidate_hash"] in refs])):  # fmt: skip
            if group:
                self.dataset.add(group, method=self.labeler.method, source=source)
        s = self.settings
        report = label_pending(self.dataset, self.labeler, workers=s.workers, scheduler=s.scheduler,
                               cluster_config=s.cluster_config, progress=self.progress)  # fmt: skip
        self.say(f"{self.labeler.method}: {report.labelled} labelled, {report.failed} failed in {report.seconds:.1f} s")
        return {"labelled": report.labelled, "failed": report.failed, "seconds": report.seconds}

    def reference_energies(self) -> dict[str, float]:
        """Candidate hash → reference energy (eV) of every labelled pick (NaN where the label failed)."""
        by_structure = {}
        for row in self.dataset.rows(method=self.labeler.method):
            by_structure[row.hash] = float(row.energy) if row.status == "labelled" else math.nan
        return {
            h: by_structure[v["structure_hash"]]
            for h, v in self.model_results(0).items()
            if v["structure_hash"] in by_structure
        }

    # -- closed loop -----------------------------------------------------------------------------------------

    def finetune(self, r: int) -> dict:
        pot = self.potential(r - 1)
        if not pot.capabilities.fine_tunable:
            raise InputError(f"--rounds {self.settings.rounds} fine-tunes the model, but the {pot.family} family "
                             "cannot be fine-tuned: use --rounds 1 or a fine-tunable model (chgnet, bpnn)")  # fmt: skip
        base, ref = self.model_results(0), self.reference_energies()
        train = []
        for h in [*self.selected(r), *(c.hash for c in self.ref_structures)]:
            if math.isfinite(ref.get(h, math.nan)):
                train.append(_labelled(self.dataset, base[h]["row_id"], self.labeler.method))
        if not train:
            raise InputError("no reference label succeeded, so there is nothing to fine-tune on")
        import copy

        model = copy.deepcopy(pot)
        t0 = time.perf_counter()
        self.say(f"fine-tuning {self.model_name} on {len(train)} label(s)")
        model.fit(train, **{"seed": self.settings.seed, **self.settings.fit})
        model.save(self.out / "models" / f"round-{r}")
        self._models[r] = model
        return {"n_train": len(train), "seconds": time.perf_counter() - t0}

    def report_step(self) -> dict:
        from mlpkit.workflows.screen.report import write_report

        return write_report(self)


def _labelled(dataset: Dataset, model_row_id: int, method: str) -> Atoms:
    """The reference-labelled row of the structure of a model row."""
    h = next(dataset.rows(id=model_row_id)).hash
    row = next(dataset.rows(hash=h, method=method, status="labelled"))
    return dataset.get_atoms(row.id)


def _is_path(text: str | None) -> bool:
    return bool(text) and "=" not in str(text) and Path(str(text)).exists()


def _model_name(model: str) -> str:
    return Path(model).name if os.path.exists(model) else model


def screen(
    candidates: str | os.PathLike,
    labeler: Labeler,
    db: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: ScreenSettings | None = None,
    **kwargs: Any,
) -> dict:
    """Run (or resume) a screen and return the contents of ``screen.json``; see the module docstring."""
    return Screen(candidates, labeler, db, out_dir, settings or ScreenSettings(), **kwargs).run()


__all__ = ["OPTIMIZERS", "STATE_FILE", "Screen", "ScreenSettings", "pick_top", "relax", "screen"]
