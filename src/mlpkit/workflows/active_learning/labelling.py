"""Adding configurations to the dataset store and labelling them: the train/valid split of a batch, labelling
through the execution layer, and the label count the budget is measured in."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from mlpkit.data.dataset import Dataset
from mlpkit.errors import InputError


def split_batch(n: int, valid_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask (n,) of the batch members kept for validation (seeded; at least one of ≥ 3 when > 0)."""
    mask = np.zeros(n, dtype=bool)
    if valid_fraction <= 0 or n == 0:
        return mask
    k = round(valid_fraction * n)
    if k == 0 and n >= 3:
        k = 1
    idx = np.random.default_rng(seed).permutation(n)[:k]
    mask[idx] = True
    return mask


def add_and_label(
    dataset: Dataset,
    labeler,
    candidates: Sequence[Atoms],
    *,
    source: str,
    valid_fraction: float,
    seed: int,
    workers: int,
    progress: bool,
    split: str | None = None,
    scheduler: str | None = None,
    cluster_config: dict | None = None,
) -> dict:
    """Add ``candidates`` as pending rows (train/valid split per :func:`split_batch`, or all ``split``) and label
    every pending row of the method through the execution layer (``workers`` local Dask processes, or a
    ``scheduler`` address, or a dask-jobqueue ``cluster_config``). Safe to call again after a crash.

    A candidate the method refuses (overlapping atoms, unknown element) is stored as ``failed`` with the reason.
    """
    from mlpkit.execution import label_pending

    images = []
    for i, atoms in enumerate(candidates):
        try:
            labeler.check(atoms)
            images.append(atoms)
        except InputError as exc:
            # Exploration can hand over a configuration the method cannot compute (two atoms collapsed onto
            # each other): record it as failed with the reason, never let it stop the loop.
            report = dataset.add([atoms], method=labeler.method, source=source, split=split or "train")
            if report.ids:
                dataset.record_failure(report.ids[0], f"rejected before labelling ({source} #{i}): {exc}")
    if split is None:
        valid = split_batch(len(images), valid_fraction, seed)
        dataset.add(
            [a for a, v in zip(images, valid, strict=True) if not v],
            method=labeler.method,
            source=source,
            split="train",
        )
        dataset.add(
            [a for a, v in zip(images, valid, strict=True) if v], method=labeler.method, source=source, split="valid"
        )
    else:
        dataset.add(images, method=labeler.method, source=source, split=split)
    rep = label_pending(
        dataset, labeler, workers=workers, scheduler=scheduler, cluster_config=cluster_config, progress=progress
    )
    return {
        "labelled": rep.labelled,
        "failed": rep.failed,
        "seconds": rep.seconds,
        "where": rep.workers,
        "labelled_in_source": dataset.count(status="labelled", method=labeler.method, source=source),
        "failed_in_source": dataset.count(status="failed", method=labeler.method, source=source),
    }


def count_labels(dataset: Dataset, method: str) -> int:
    """Labels used for training/validation (the test set excluded)."""
    return sum(dataset.count(status="labelled", method=method, split=s) for s in ("train", "valid"))
