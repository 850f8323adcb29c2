"""Label the configurations an iteration selected (through the execution layer, each label stored as it
arrives)."""

from __future__ import annotations

from mlpkit.files import atomic_write_json, read_images
from mlpkit.workflows.active_learning.labelling import add_and_label
from mlpkit.workflows.engine import Step


class Label(Step):
    description = "label the selected configurations"

    def __init__(self, i: int):
        self.i = i
        self.name = f"iter{i}.label"

    def run(self, run) -> dict:
        i = self.i
        images = read_images(run.iter_dir(i) / "selected.extxyz")
        rep = {"labelled": 0, "failed": 0, "seconds": 0.0}
        if images:
            run.log(f"iteration {i}: labelling {len(images)} configurations with {run.method}")
            rep = add_and_label(
                run.dataset,
                run.labeler,
                images,
                source=f"al-iter-{i}",
                valid_fraction=run.cfg.select.valid_fraction,
                seed=run.cfg.seed + i + 1,
                **run.cfg.execution.where(),
                progress=run.progress,
            )
        atomic_write_json(run.iter_dir(i) / "labels.json", rep)
        return rep
