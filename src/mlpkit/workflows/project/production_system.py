"""The system production MD runs on: the training start, or a larger one (``production.structure``, a box spec or a
file; ``production.supercell``, repeats of it or of the equilibrated training box), made ready with the final
potential as the sample stage makes the training box ready with the driver."""

from __future__ import annotations

from ase import Atoms

from mlpkit.files import atomic_write_images
from mlpkit.workflows.project.context import START_FILE, ProjectRun

#: production/PRODUCTION_START_FILE: the production system after its relaxation and equilibration
PRODUCTION_START_FILE = "start.extxyz"


def production_start(run: ProjectRun, potential) -> tuple[Atoms, dict]:
    """(start structure, description) of production MD.

    Without ``production.structure`` / ``production.supercell``: :attr:`ProjectRun.start` as it is. Otherwise the
    production system is built (a box spec packed with ``project.seed``; a file's frame 0) or taken from the
    equilibrated training start, repeated ``supercell`` times along its cell vectors, and then, periodic only:
    FIRE on the positions with the final ``potential`` (built structures, and a training box no sample stage
    equilibrated: a packed box has contacts down to 1.6 Å; at most 50 steps to 0.5 eV/Å) and
    ``sampling.equilibration`` steps of Langevin NVT at the production temperature (``sampling.friction``), so that
    the copies of a replicated box decorrelate and a packed one becomes a liquid. Written to
    ``production/start.extxyz``. The description: ``atoms``, ``formula``, ``source`` (words), ``equilibration``
    (what ran, or None).
    """
    p = run.cfg.production
    if not p.new_system:
        start = run.start
        return start, {"atoms": len(start), "formula": start.get_chemical_formula(), "source": "training start",
                       "equilibration": None}  # fmt: skip
    built = run.cfg.production_structure_atoms()
    base = run.start if built is None else built
    source = "the equilibrated training start" if built is None else f"{p.structure}"
    # a structure built here, or a training box that was never equilibrated (a run directory from before the sample
    # stage wrote configs/start.extxyz), is relaxed first
    relax = built is not None or not run.path("configs", START_FILE).is_file()
    if built is None and relax:
        source = "the training structure"
    if p.supercell is not None:
        base = base.repeat(tuple(int(n) for n in p.supercell))
        source = f"{'x'.join(str(n) for n in p.supercell)} supercell of {source}"
    equilibration = None
    if base.pbc.all():
        from mlpkit.sampling import equilibrate_box

        s = run.cfg.sampling
        run.say(f"production system: {len(base)} atoms ({source}); equilibrating it with the final potential")
        base = equilibrate_box(
            base,
            potential.calculator(),
            temperature=p.temperature,
            relax_steps=50 if relax else 0,  # the equilibrated training start is relaxed already
            fmax=0.5,
            nvt_steps=s.equilibration,
            timestep=min(p.timestep, 0.5),
            friction=s.friction,
            seed=run.cfg.project.seed + 104729,  # not the training start's own stream
        )
        equilibration = base.info.get("equilibration")
    out = run.path("production", PRODUCTION_START_FILE)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_images(out, [base])
    about = {
        "atoms": len(base),
        "formula": base.get_chemical_formula(),
        "source": source,
        "equilibration": equilibration,
        "file": str(out),
    }
    run.say(f"production system: {len(base)} atoms, {about['formula']} ({source}); start written to {out}")
    return base, about


def system_text(about: dict | None) -> str:
    """The production system in words for the report: atoms, formula and where it came from."""
    if not about:
        return "the training start"
    text = f"{about.get('atoms'):,} atoms ({about.get('formula')}), {about.get('source')}"
    if about.get("equilibration"):
        text += f"; equilibrated with the final potential ({about['equilibration']})"
    return text
