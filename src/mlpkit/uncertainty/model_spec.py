"""What model to train, in one typed section shared by every workflow: one potential, or a committee of them.

``model`` in a project file and in an active-learning file::

    family: bpnn                       # any registered family (mlpkit.potentials.known_families())
    hyperparameters: {hidden: [16, 16]}   # checked against the family's own Hyperparameters model
    fit: {epochs: 1000}                # checked against the family's own FitSettings model
    committee:
      n_members: 4                     # 1: the potential alone (its own uncertainty, if it has one)
      bootstrap: false
      warm_start: false
      members:                         # optional: query by committee across families (cycled over n_members)
        - {family: bpnn}
        - {family: mtp, hyperparameters: {level: 12}}

MC-dropout instead of a committee: one member with dropout layers and ``committee: {n_members: 1,
dropout_passes: 20}`` (``hyperparameters: {dropout: 0.1}`` on a family that has ``predict_samples``, e.g. bpnn).

:func:`fit_model` is the one way workflows train: it returns a single potential or a
:class:`~mlpkit.uncertainty.committee.Committee`, and :func:`uncertainty_kind` says what uncertainty the result has
before anything is trained (so a configuration that cannot drive active learning is refused up front).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from ase import Atoms
from pydantic import Field, ValidationError, field_validator, model_validator

from mlpkit.errors import InputError
from mlpkit.potentials.base import Potential
from mlpkit.potentials.registry import create_potential, family_class, known_families
from mlpkit.schema import Settings
from mlpkit.uncertainty.committee import Committee, bootstrap_resample
from mlpkit.uncertainty.parallel_fit import MemberJob, fit_in_processes

#: wrappers made of other potentials: not a family a user trains directly
WRAPPERS = ("committee", "mc_dropout")


def _check_family(name: str) -> str:
    trainable = [f for f in known_families() if f not in WRAPPERS]
    if name not in trainable:
        close = difflib.get_close_matches(name, trainable, n=1)
        raise ValueError(
            f"unknown model family {name!r}"
            + (f" (did you mean {close[0]}?)" if close else "")
            + f"; known: {', '.join(trainable)}"
        )
    try:
        family_class(name)
    except InputError as exc:  # a family whose optional dependency is missing
        raise ValueError(str(exc)) from None
    return name


def _typed(model: type[Settings], values: dict[str, Any], where: str) -> Settings:
    """``model(**values)``; the first problem as ``@where.key message`` (the config's key-path convention), the rest
    in the message text."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                close = difflib.get_close_matches(key, list(model.model_fields), n=1)
                msg = "unknown key" + (f" (did you mean {close[0]}?)" if close else "")
                msg += f"; allowed: {', '.join(model.model_fields)}"
            else:
                msg = err["msg"].removeprefix("Value error, ") + f" (got {err.get('input')!r})"
                field = model.model_fields.get(str(err["loc"][0])) if err["loc"] else None
                if field is not None and field.description:
                    msg += f" [{key}: {field.description}]"
            problems.append((key, msg))
        first_key, first_msg = problems[0]
        more = "".join(f"; also {where}.{k}: {m}" for k, m in problems[1:])
        raise ValueError(f"@{where}.{first_key} {first_msg}{more}") from None


class MemberSpec(Settings):
    """One kind of potential: its family, hyperparameters and fit settings (each checked by the family itself)."""

    family: str = Field("bpnn", description="potential family; `mlpkit train --help` lists the installed ones")
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="the family's hyperparameters; unset ones take the family's (data-derived) defaults",
    )
    fit: dict[str, Any] = Field(
        default_factory=dict, description="the family's fit settings (epochs, learning rates, noise levels, ...)"
    )

    @field_validator("family")
    @classmethod
    def _known(cls, v: str) -> str:
        return _check_family(v)

    @model_validator(mode="after")
    def _family_settings(self) -> MemberSpec:
        cls = family_class(self.family)
        problems = []
        for model, values, where in (
            (cls.Hyperparameters, self.hyperparameters, "hyperparameters"),
            (cls.FitSettings, self.fit, "fit"),
        ):
            try:
                _typed(model, values, where)
            except ValueError as exc:
                problems.append(str(exc))
        if problems:  # both blocks reported at once; the first names its key path for the config's error format
            raise ValueError("; also ".join(problems))
        return self

    def potential_class(self) -> type[Potential]:
        return family_class(self.family)

    def fit_settings(self) -> dict[str, Any]:
        """Every fit setting of the family, defaults filled in (what the fit will use)."""
        return self.potential_class().FitSettings.model_validate(self.fit).model_dump()


class CommitteeSpec(Settings):
    """An ensemble whose spread is the uncertainty (source 5.4): members from different seeds, data or families."""

    n_members: int = Field(
        4,
        ge=1,
        le=32,
        description="members; 1 = the potential alone, whose own uncertainty (GP variance, extrapolation grade) "
        "is then used",
    )
    bootstrap: bool = Field(
        False,
        description="each member trains on a bootstrap resample (off: members differ by seed only and each sees "
        "every label, ~2x lower test error in docs/benchmarks/active-learning.md)",
    )
    warm_start: bool = Field(
        False,
        description="active learning: start each round's members from the previous round's (off: from scratch, "
        "steadier: docs/benchmarks/pipeline.md)",
    )
    members: list[MemberSpec] | None = Field(
        None,
        description="query by committee across algorithms: member kinds cycled over n_members (null: all of the "
        "model's family)",
    )
    dropout_passes: int = Field(
        0,
        ge=0,
        le=1000,
        description="MC-dropout: with n_members 1 and a model trained with dropout > 0, the uncertainty is the "
        "spread of this many stochastic passes (0: off)",
    )


class ModelSpec(MemberSpec):
    """The potential (family, hyperparameters, fit settings) and the committee built from it."""

    committee: CommitteeSpec = Field(default_factory=CommitteeSpec, description="ensemble for uncertainty")

    @model_validator(mode="after")
    def _mixed_committee(self) -> ModelSpec:
        if self.committee.members is not None and self.committee.n_members < max(2, len(self.committee.members)):
            raise ValueError(
                f"@committee.n_members {self.committee.n_members} members cannot hold the "
                f"{len(self.committee.members)} member kinds listed in committee.members"
            )
        if self.committee.dropout_passes:
            self._check_dropout()
        return self

    def _check_dropout(self) -> None:
        passes = self.committee.dropout_passes
        if self.committee.n_members != 1:
            raise ValueError(
                f"@committee.dropout_passes MC-dropout ({passes} passes) needs n_members 1, got "
                f"{self.committee.n_members}: a committee already has its own spread"
            )
        if passes < 2:
            raise ValueError(f"@committee.dropout_passes MC-dropout needs at least 2 passes, got {passes}")
        cls = self.potential_class()
        if not cls.capabilities.samples:
            raise ValueError(
                f"@committee.dropout_passes a {self.family} potential has no stochastic passes "
                "(predict_samples); MC-dropout needs one, e.g. bpnn"
            )
        if "dropout" in cls.Hyperparameters.model_fields and not float(self.hyperparameters.get("dropout", 0)) > 0:
            raise ValueError(
                "@hyperparameters.dropout MC-dropout needs a model trained with dropout > 0 "
                f"(committee.dropout_passes is {passes}); e.g. hyperparameters: {{dropout: 0.1}}"
            )

    def member_specs(self) -> list[MemberSpec]:
        """The spec of each member, in order (one entry when there is no committee)."""
        kinds = self.committee.members or [
            MemberSpec(family=self.family, hyperparameters=self.hyperparameters, fit=self.fit)
        ]
        return [kinds[i % len(kinds)] for i in range(self.committee.n_members)]

    @property
    def is_committee(self) -> bool:
        return self.committee.n_members >= 2


def uncertainty_kind(spec: ModelSpec) -> str:
    """The uncertainty :func:`fit_model`'s result will report (:data:`mlpkit.potentials.base.UncertaintyKind`)."""
    if spec.is_committee:
        return "committee"
    if spec.committee.dropout_passes:
        return "dropout"
    return spec.potential_class().capabilities.uncertainty


def _member_done(i: int, history) -> None:
    print(f"    member {i + 1} fitted ({history.seconds:.0f} s, {history.stopped_because})", flush=True)


def fit_model(
    spec: ModelSpec,
    train: Sequence[Atoms],
    valid: Sequence[Atoms] | None = None,
    *,
    seed: int = 0,
    previous: Potential | None = None,
    progress: bool = False,
    checkpoint_dir: str | None = None,
    processes: int = 1,
) -> Potential:
    """Build and fit what ``spec`` describes on labelled ``train`` (``valid``: early stopping / calibration data).

    Members differ by the seed of their initial weights (families with an ``init_seed`` hyperparameter), their fit
    seed (batch order) and, with ``committee.bootstrap``, their data. ``previous`` (a model of the same shape) is
    refitted from its current weights when ``committee.warm_start`` is on. ``checkpoint_dir``: each member's trainer
    checkpoints go to ``checkpoint_dir/member-NN`` (a killed fit resumes there). ``processes`` > 1 fits a
    committee's members side by side in that many spawned processes (:mod:`mlpkit.uncertainty.parallel_fit`; the
    same members as a sequential fit).
    """
    import copy
    import tempfile
    from pathlib import Path

    train = list(train)
    if not train:
        raise InputError("no training configurations")
    previous_members: list[Potential] | None = None
    if previous is not None and spec.committee.warm_start:
        prev = list(previous.members) if isinstance(previous, Committee) else [previous]
        if len(prev) == spec.committee.n_members:
            previous_members = prev
    members: list[Potential] = []
    jobs = []
    parallel = processes > 1 and spec.is_committee and spec.committee.n_members > 1
    tmp = tempfile.TemporaryDirectory(prefix="mlpkit-warm-") if parallel and previous_members else None
    for i, member_spec in enumerate(spec.member_specs()):
        sub = (
            bootstrap_resample(train, seed + 1000 * (i + 1))
            if spec.committee.bootstrap and spec.is_committee
            else train
        )
        cls = member_spec.potential_class()
        runtime: dict[str, Any] = {"seed": seed + i, "progress": progress}
        if checkpoint_dir is not None:
            runtime["checkpoint_dir"] = str(Path(checkpoint_dir) / f"member-{i:02d}")
        fit = {k: v for k, v in member_spec.fit.items() if k in cls.FitSettings.model_fields}
        hp = dict(member_spec.hyperparameters)
        if "init_seed" in cls.Hyperparameters.model_fields:
            hp["init_seed"] = int(hp.get("init_seed", 0)) + seed + i
        if parallel:
            warm_dir = None
            if previous_members is not None:
                assert tmp is not None
                warm_dir = str(Path(tmp.name) / f"member-{i:02d}")
                previous_members[i].save(warm_dir)
                runtime["warm_start"] = True
            runtime["progress"] = False  # one bar per worker would interleave; the parent reports each member
            jobs.append(
                MemberJob(
                    member_spec.family,
                    hp,
                    train,
                    list(sub),
                    list(valid) if valid else None,
                    {**fit, **runtime},
                    warm_dir,
                )
            )
            continue
        if previous_members is not None:
            member = copy.deepcopy(previous_members[i])
            runtime["warm_start"] = True
        else:
            member = create_potential(member_spec.family, train, **hp)
        member.fit(sub, valid, **fit, **runtime)
        members.append(member)
    if parallel:
        try:
            done = fit_in_processes(jobs, processes, on_done=_member_done if progress else None)
        finally:
            if tmp is not None:
                tmp.cleanup()
        members = [m for m, _ in done]
    if not spec.is_committee:
        if spec.committee.dropout_passes:
            from mlpkit.uncertainty.mc_dropout import MCDropout

            base = members[0].base if isinstance(members[0], MCDropout) else members[0]
            return MCDropout(base, n_samples=spec.committee.dropout_passes, seed=seed)
        return members[0]
    return Committee(
        members,
        metadata={
            "bootstrap": spec.committee.bootstrap,
            "seed": seed,
            "families": [m.family for m in members],
            "n_train": len(train),
        },
    )


def train_committee(
    train: Sequence[Atoms],
    valid: Sequence[Atoms] | None = None,
    *,
    family: str | Sequence[str] = "bpnn",
    n_members: int = 4,
    bootstrap: bool = True,
    seed: int = 0,
    hyperparameters: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
    previous: Committee | None = None,
    processes: int = 1,
    **fit_settings: Any,
) -> Committee:
    """A committee of ``n_members`` in one call (the Python shorthand of a :class:`ModelSpec`; see :func:`fit_model`).

    family:           one family name, or a list (cycled over members: query by committee across families)
    hyperparameters:  one dict, or one per family
    previous:         a committee of the same shape to warm-start from (refitted on copies; ``previous`` is kept)
    processes:        fit the members side by side in this many spawned processes (same result as 1)
    fit_settings:     each member's fit settings (epochs, learning_rate, ...); run-time options seed/progress too
    """
    if n_members < 2:
        raise InputError(f"n_members must be at least 2, got {n_members}")
    families = [family] if isinstance(family, str) else list(family)
    if isinstance(hyperparameters, dict) or hyperparameters is None:
        hypers = [dict(hyperparameters or {})] * len(families)
    else:
        hypers = [dict(h) for h in hyperparameters]
        if len(hypers) != len(families):
            raise InputError(f"{len(hypers)} hyperparameter sets given for {len(families)} families")
    progress = bool(fit_settings.pop("progress", False))
    checkpoint_dir = fit_settings.pop("checkpoint_dir", None)
    members = [{"family": f, "hyperparameters": h, "fit": fit_settings} for f, h in zip(families, hypers, strict=True)]
    try:
        spec = ModelSpec(
            family=families[0],
            hyperparameters=hypers[0],
            fit=fit_settings,
            committee={
                "n_members": n_members,
                "bootstrap": bootstrap,
                "warm_start": previous is not None,
                "members": members if len(families) > 1 else None,
            },
        )
    except ValidationError as exc:
        raise InputError(str(exc)) from None
    model = fit_model(
        spec,
        train,
        valid,
        seed=seed,
        previous=previous,
        progress=progress,
        checkpoint_dir=checkpoint_dir,
        processes=processes,
    )
    assert isinstance(model, Committee)
    model.metadata["families"] = families
    return model
