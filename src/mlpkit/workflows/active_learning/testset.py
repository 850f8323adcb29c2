"""The test set of an active-learning run: independent of the training data, labelled once, kept fixed."""

from __future__ import annotations

import os
from pathlib import Path

from ase import Atoms

from mlpkit.errors import InputError, MixedMethodError
from mlpkit.files import atomic_write_images, read_images
from mlpkit.workflows.active_learning.driver import driver_frames
from mlpkit.workflows.active_learning.labelling import add_and_label
from mlpkit.workflows.engine import Step


class TestSet(Step):
    """The fixed, labelled test set: a labelled file, the cached set, or driver MD labelled once. Unlike the
    other steps it runs on every resume too (it loads ``run.test``); it is recorded once."""

    __test__ = False  # not a pytest class
    name = "test"
    description = "the labelled test set"

    def run(self, run) -> dict:
        t = run.cfg.test
        cache = Path(t.cache) if t.cache else run.run_dir / "test-set.extxyz"
        if t.file:
            from mlpkit.data.structures import read_structures

            images = read_structures(t.file)
            for i, a in enumerate(images):
                if a.calc is None or "forces" not in a.calc.results:
                    raise InputError(f"test.file {t.file} frame {i} carries no reference energy and forces")
                m = a.info.get("method")
                if m and m not in (run.method, t.method):
                    raise MixedMethodError(f"test.file {t.file} was labelled with {m}, this run uses {run.method}")
            run.test = images
        elif cache.exists() and cache.stat().st_size > 0:
            run.test = read_images(cache)
            methods = {a.info.get("method") for a in run.test} - {None}
            if methods and methods != {run.method}:
                raise MixedMethodError(
                    f"test set {cache} was labelled with {sorted(methods)}, this run uses "
                    f"{run.method}; point test.cache elsewhere"
                )
        else:
            frames: list[Atoms] = []
            sample = run.run_dir / "test-frames.extxyz"
            if not sample.exists():
                for j, temp in enumerate(t.temperatures):
                    frames += driver_frames(
                        run.structure,
                        run.driver.calculator,
                        driver=run.driver.method,
                        temperature=temp,
                        thermostat=t.thermostat,
                        timestep=run.cfg.explore.timestep,
                        friction=run.cfg.explore.friction,
                        equilibration=t.equilibration,
                        every=t.steps_between,
                        n=t.n_per_temperature,
                        seed=t.seed + 101 * j,
                        allow_bond_breaking=True,
                        label=f"test-{temp:g}K",
                    )
                atomic_write_images(sample, frames)
            frames = read_images(sample)
            run.log(
                f"test set: labelling {len(frames)} configurations from independent driver MD at "
                f"{', '.join(f'{x:g}' for x in t.temperatures)} K"
            )
            for temp in t.temperatures:
                sub = [f for f in frames if f.info.get("source") == f"test-{temp:g}K"]
                run.dataset.add(sub, method=run.method, source=f"test-{temp:g}K", split="test")
            add_and_label(
                run.dataset,
                run.labeler,
                [],
                source="test",
                valid_fraction=0,
                seed=0,
                **run.cfg.execution.where(),
                progress=run.progress,
                split="test",
            )
            run.test = run.dataset.to_atoms(method=run.method, split="test")
            if not run.test:
                raise InputError("no test configuration could be labelled")
            from ase.io import write

            tmp = cache.with_name(cache.name + ".part")
            cache.parent.mkdir(parents=True, exist_ok=True)
            write(tmp, run.test, format="extxyz")
            os.replace(tmp, cache)
        temps = sorted({str(a.info.get("source", "?")) for a in run.test})
        return {"n": len(run.test), "sources": temps, "path": str(t.file or cache)}
