"""A committee (ensemble) of potentials: the mean is the prediction, the spread is the uncertainty.

The members differ by initial weights (seed) and by a bootstrap resample of the training set; they may also
be of different families (query by committee). For M members with predictions :math:`E_m`:

    Ē = (1/M) Σ_m E_m,          σ_E² = (1/M) Σ_m (E_m − Ē)²            (population variance, as in the source)
    F̄_i = (1/M) Σ_m F_m,i,       σ_F,i = sqrt((1/M) Σ_m (F_m,i − F̄_i)²)   (per atom, per component)

The per-configuration "model deviation" used to select configurations is DP-GEN's: the maximum over atoms of
the norm of the per-atom force std, ``max_i ||σ_F,i||`` (see :meth:`Prediction.max_force_deviation`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from mlpkit.data.records import methods_of, training_set_hash
from mlpkit.errors import InputError
from mlpkit.potentials.base import Capabilities, FitHistory, Potential, Prediction
from mlpkit.potentials.registry import load_potential
from mlpkit.potentials.store import read_model_json, write_model_dir


class Committee(Potential):
    """A potential made of ``members`` (any families with the same species); predicts the committee mean.

    ``predict`` fills ``energy_std`` (eV) and ``forces_std`` ((n_atoms, 3) eV/Å per configuration), so the
    ASE calculator exposes ``energy_std``, ``forces_std`` and ``max_force_std``.
    """

    family = "committee"
    capabilities = Capabilities(uncertainty="committee", fit="members")

    def __init__(self, members: Sequence[Potential], metadata: dict[str, Any] | None = None):
        members = list(members)
        if len(members) < 2:
            raise InputError(f"a committee needs at least 2 members to estimate a spread, got {len(members)}")
        species = {tuple(sorted(m.species)) for m in members}
        if len(species) != 1:
            raise InputError(f"committee members disagree about the species they know: {sorted(species)}")
        self.members = members
        # keep the members' order of species (sorted by atomic number by convention)
        self.species = tuple(members[0].species)
        self.cutoff = float(max(m.cutoff for m in members))
        self.metadata = dict(metadata or {})
        # members with the same neighbour data (species, cutoff) build one list per MD step, not one each
        for k, m in enumerate(members):
            m.share_neighbors(members[k + 1 :])

    def __repr__(self) -> str:
        fams = ", ".join(m.family for m in self.members)
        return f"Committee({len(self.members)} members: {fams})"

    @property
    def n_members(self) -> int:
        return len(self.members)

    # -- fitting ---------------------------------------------------------------------------------------

    def fit(
        self,
        train: Sequence[Atoms],
        valid: Sequence[Atoms] | None = None,
        *,
        bootstrap: bool = True,
        seed: int = 0,
        warm_start: bool = False,
        **settings,
    ) -> FitHistory:
        """Refit every member on its own bootstrap resample of ``train`` (seeds ``seed + i``).

        Returns a combined history: ``epochs`` holds one entry per member with its final numbers.
        """
        import time

        start = time.perf_counter()
        hist = FitHistory()
        for i, member in enumerate(self.members):
            sub = bootstrap_resample(train, seed + i) if bootstrap else list(train)
            h = member.fit(sub, valid, seed=seed + i, warm_start=warm_start, **settings)
            hist.epochs.append(
                {"member": i, "best_epoch": h.best_epoch, "best_valid_loss": h.best_valid_loss, "seconds": h.seconds}
            )
        hist.seconds = time.perf_counter() - start
        hist.stopped_because = "all members fitted"
        methods = methods_of(train)
        self.metadata.update(
            {
                "method": methods[0] if len(methods) == 1 else methods,
                "training_set_hash": training_set_hash(train),
                "n_train": len(train),
                "bootstrap": bootstrap,
                "seed": seed,
            }
        )
        return hist

    # -- prediction ------------------------------------------------------------------------------------

    def predict_members(self, images: Sequence[Atoms], *, stress: bool = False) -> list[Prediction]:
        """Each member's own prediction, in member order."""
        self.check_species(images)
        return [m.predict(images, stress=stress) for m in self.members]

    def predict(self, images: Sequence[Atoms], *, stress: bool = False) -> Prediction:
        return combine_predictions(self.predict_members(images, stress=stress))

    def descriptors(self, images: Sequence[Atoms]) -> list[np.ndarray]:
        """Per-atom descriptors of the first member that has them (for diversity selection)."""
        for m in self.members:
            if hasattr(m, "descriptors"):
                return m.descriptors(images)
        raise InputError("no committee member provides descriptors()")

    # -- persistence -----------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        write_model_dir(
            path,
            {
                "family": self.family,
                "species": list(self.species),
                "cutoff": self.cutoff,
                "n_members": len(self.members),
                "member_families": [m.family for m in self.members],
                "metadata": self.metadata,
            },
            tensors=None,
            members=self.members,
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> Committee:
        meta = read_model_json(path)
        if meta.get("family") != cls.family:
            raise InputError(f"{path} holds a {meta.get('family')!r} model, not a committee")
        n = int(meta["n_members"])
        members_dir = Path(path) / "members"
        members = [load_potential(members_dir / f"{i:02d}") for i in range(n)]
        return cls(members, metadata=meta.get("metadata", {}))


def combine_predictions(preds: Sequence[Prediction]) -> Prediction:
    """Mean and population standard deviation over member (or sample) predictions of the same images."""
    if len(preds) < 2:
        raise InputError("need at least two predictions to form a spread")
    energies = np.stack([np.asarray(p.energy, dtype=float) for p in preds])  # (M, n)
    n = energies.shape[1]
    forces_mean, forces_std = [], []
    for j in range(n):
        fj = np.stack([np.asarray(p.forces[j], dtype=float) for p in preds])  # (M, n_atoms, 3)
        forces_mean.append(fj.mean(axis=0))
        forces_std.append(fj.std(axis=0))
    stress = None
    if all(p.stress is not None for p in preds):
        stress = np.mean(np.stack([np.asarray(p.stress, dtype=float) for p in preds]), axis=0)
    return Prediction(
        energy=energies.mean(axis=0),
        forces=forces_mean,
        stress=stress,
        energy_std=energies.std(axis=0),
        forces_std=forces_std,
    )


def bootstrap_resample(images: Sequence[Atoms], seed: int) -> list[Atoms]:
    """A bootstrap resample (same size, drawn with replacement, seeded) of ``images``.

    With very small sets a resample can miss an element entirely; we redraw (up to 100 times) until every
    element of the full set is present, so each member learns every species.
    """
    images = list(images)
    if not images:
        raise InputError("cannot resample an empty training set")
    rng = np.random.default_rng(seed)
    all_species = set().union(*(set(a.get_chemical_symbols()) for a in images))
    for _ in range(100):
        idx = rng.integers(0, len(images), size=len(images))
        sub = [images[i] for i in idx]
        if set().union(*(set(a.get_chemical_symbols()) for a in sub)) == all_species:
            return sub
    return images
