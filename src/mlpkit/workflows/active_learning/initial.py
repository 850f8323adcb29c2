"""The initial set: the first configurations labelled with the reference (driver MD frames, rattled copies,
a file, or the most diverse of a pool), and the pool itself (shared with the random baseline)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from mlpkit.errors import InputError
from mlpkit.files import atomic_write_images, read_images
from mlpkit.workflows.active_learning.driver import driver_frames
from mlpkit.workflows.active_learning.labelling import add_and_label
from mlpkit.workflows.active_learning.select import diverse_subset
from mlpkit.workflows.engine import Step


class InitialSet(Step):
    name = "initial"
    description = "the initial configurations, labelled"

    def run(self, run) -> dict:
        cfg, ini = run.cfg, run.cfg.initial
        path = run.run_dir / "initial.extxyz"
        if not path.exists():  # sampled once; a resumed run labels exactly the same frames
            if ini.selection == "farthest_point":
                pool = initial_pool(run)
                run.log(
                    f"initial set: the {ini.n} most diverse of {len(pool)} unlabelled configurations "
                    "(farthest-point in descriptor space)"
                )
                images = [pool[i] for i in sorted(diverse_subset(pool, ini.n, run.cfg.committee))]
            elif ini.sampling == "md":
                images = driver_frames(
                    run.structure,
                    run.driver.calculator,
                    driver=run.driver.method,
                    temperature=ini.temperature,
                    thermostat=ini.thermostat,
                    timestep=cfg.explore.timestep,
                    friction=cfg.explore.friction,
                    equilibration=ini.equilibration,
                    every=ini.steps_between,
                    n=ini.n,
                    seed=cfg.seed,
                    allow_bond_breaking=cfg.explore.allow_bond_breaking,
                    label="initial",
                )
            elif ini.sampling == "rattle":
                from mlpkit.sampling import rattle

                images = rattle(run.structure, ini.n, stdev=ini.rattle_stdev, seed=cfg.seed)
            else:
                pool = initial_pool(run)
                idx = np.sort(np.random.default_rng(cfg.seed).choice(len(pool), ini.n, replace=False))
                images = [pool[i] for i in idx]
            atomic_write_images(path, images)
        images = read_images(path)
        run.log(f"initial set: labelling {len(images)} configurations with {run.method}")
        rep = add_and_label(
            run.dataset,
            run.labeler,
            images,
            source="initial",
            valid_fraction=cfg.select.valid_fraction,
            seed=cfg.seed,
            **cfg.execution.where(),
            progress=run.progress,
        )
        if rep["labelled_in_source"] < 2:
            raise InputError(
                f"only {rep['labelled_in_source']} initial configurations could be labelled "
                f"({rep['failed_in_source']} failed); see `mlpkit data` for the errors"
            )
        return rep


def initial_pool(run) -> list[Atoms]:
    """The unlabelled configurations the initial set is chosen from (cached in ``initial-pool.extxyz``).

    sampling='file': the file's structures. sampling='md' with selection='farthest_point': ``pool_factor`` x n
    driver-MD frames, ``steps_between`` steps apart after ``equilibration``. The random baseline draws its
    initial set from the same pool.
    """
    ini = run.cfg.initial
    path = run.run_dir / "initial-pool.extxyz"
    if path.exists():
        return read_images(path)
    if ini.sampling == "file":
        from mlpkit.data.structures import read_structures

        pool = read_structures(ini.file)
        if len(pool) < ini.n:
            raise InputError(f"initial.file {ini.file} has {len(pool)} structures, fewer than initial.n = {ini.n}")
        for a in pool:
            a.calc = None
    else:
        n_pool = ini.n * ini.pool_factor
        run.log(f"initial pool: {n_pool} frames of {run.driver.method} MD at {ini.temperature:g} K")
        pool = driver_frames(
            run.structure,
            run.driver.calculator,
            driver=run.driver.method,
            temperature=ini.temperature,
            thermostat=ini.thermostat,
            timestep=run.cfg.explore.timestep,
            friction=run.cfg.explore.friction,
            equilibration=ini.equilibration,
            every=ini.steps_between,
            n=n_pool,
            seed=run.cfg.seed,
            allow_bond_breaking=run.cfg.explore.allow_bond_breaking,
            label="initial",
        )
    for k, a in enumerate(pool):
        a.info["pool_index"] = k
    atomic_write_images(path, pool)
    return read_images(path)  # what a resumed run will read: bit-identical configurations, identical hashes


# test set ------------------------------------------------------------------------------------------
