"""Stage 6 of ``mlpkit run``: production MD with the final committee, watched for uncertainty, and the
trajectory's properties."""

from __future__ import annotations

from pathlib import Path

from mlpkit.files import atomic_write_images, atomic_write_json
from mlpkit.workflows.engine import Step
from mlpkit.workflows.project.context import START_FILE, ProjectRun, relaxed
from mlpkit.workflows.project.production_system import production_start
from mlpkit.workflows.project.validate import validation_reference_frequencies


def watchdog_bounds(run: ProjectRun) -> tuple[float, float, float, str]:
    """(warn, stop, scale, where from) for production MD: the configured numbers, or for 'auto' the final
    active-learning trust window (lower, upper) and its calibration scale; 0.15 / 0.5 eV/Å and the raw committee
    spread without active learning."""
    w = run.cfg.production.watchdog
    trust = run.state.result("learn").get("trust") or {}
    scale = float(trust.get("scale", 1.0) or 1.0)
    warn = float(trust.get("lower", 0.15)) if w.warn == "auto" else float(w.warn)
    stop = float(trust.get("upper", 0.5)) if w.stop == "auto" else float(w.stop)
    origin = "final active-learning trust window" if trust and "auto" in (w.warn, w.stop) else "configuration"
    if stop <= warn:
        stop = 3 * warn
        origin += " (stop raised to 3x warn)"
    return warn, stop, scale, origin


def watchdog_density(run: ProjectRun, start) -> tuple[tuple[float, float] | None, str]:
    """(density range in g/cm³ or None, where from) for the production watchdog: the configured range; for 'auto',
    under a barostat on a periodic box, the densities of the periodic training and validation boxes widened by
    ``density_margin`` on both sides."""
    w, p = run.cfg.production.watchdog, run.cfg.production
    if w.density is None or not start.pbc.all():
        return None, "off"
    if w.density != "auto":
        return (float(w.density[0]), float(w.density[1])), "configuration"
    if p.ensemble != "npt":
        return None, "off (constant volume)"
    from mlpkit.data.boxes import density_of

    rho = [density_of(a) for split in ("train", "valid") for a in run.labelled(split) if a.pbc.all()]
    if not rho:
        return None, "off (no periodic training boxes)"
    m = w.density_margin
    return (min(rho) * (1 - m), max(rho) * (1 + m)), f"{len(rho)} training boxes ± {m:.0%}"


def _segment_settings(run: ProjectRun) -> dict:
    """The settings production's start and run are made from (for the segments' key)."""
    data = run.cfg.to_dict()
    return {k: data.get(k) for k in ("system", "sampling", "production")} | {"seed": run.cfg.project.seed}


class Production(Step):
    name = "production"
    description = "production MD with the watchdog, and properties"
    sections = ("production",)

    def run(self, run: ProjectRun) -> dict:
        """Production MD with the final committee, watched for uncertainty; properties of the trajectory."""
        from mlpkit.md.dynamics import UncertaintyWatchdog
        from mlpkit.md.properties import is_molecule, trajectory_properties
        from mlpkit.workflows.project.production_segments import run_segmented, segments_key

        p = run.cfg.production
        if not p.enabled:
            return {"skipped": "production.enabled is false"}
        pot = run.potential("final")
        out_dir = run.path("production")
        out_dir.mkdir(parents=True, exist_ok=True)
        warn, stop, scale, origin = watchdog_bounds(run)
        start, system = production_start(run, pot)
        density_range, density_origin = watchdog_density(run, start)
        dog = UncertaintyWatchdog(warn, stop, scale=scale, density_range=density_range)
        npt = f" at {p.pressure:g} bar (barostat {p.barostat_time:g} fs)" if p.ensemble == "npt" else ""
        dens = (
            f"; stops outside {density_range[0]:.3f}-{density_range[1]:.3f} g/cm³ ({density_origin})"
            if density_range
            else ""
        )
        run.say(
            f"{p.ensemble.upper()} {p.temperature:g} K{npt}, {len(start)} atoms, {p.steps} x {p.timestep:g} fs; "
            f"watchdog warn {warn:.3g} / "
            f"stop {stop:.3g} eV/Å ({origin}; σ scale {scale:.3g}){dens}"
        )
        res, max_seen, resumed = run_segmented(
            start,
            pot.calculator(),
            steps=p.steps,
            segment_steps=p.segment_steps,
            out_dir=out_dir,
            key=segments_key(_segment_settings(run), [run.path("models", "final"), run.path("configs", START_FILE)]),
            trajectory=out_dir / p.trajectory,
            watchdog=dog,
            say=run.say,
            ensemble=p.ensemble,
            temperature=p.temperature,
            timestep=p.timestep,
            friction=p.friction,
            pressure=p.pressure,
            barostat_time=p.barostat_time,
            interval=p.interval,
            seed=run.cfg.project.seed,
            progress=run.progress,
        )
        if resumed:
            run.say(f"continued after {resumed} segment(s) of an earlier run (production/segments/)")
        atomic_write_images(out_dir / "uncertain.extxyz", res.uncertain_frames)
        md_png = _plot_md(res, p.timestep, warn, stop, out_dir / "md.png")
        if res.stopped_because:
            run.say(f"[yellow]stopped after {res.steps_done} steps: {res.stopped_because}[/]")
        if res.uncertain_frames:
            run.say(
                f"{len(res.uncertain_frames)} uncertain frames saved to {out_dir / 'uncertain.extxyz'}; label them "
                "with "
                f"`mlpkit label --input {out_dir / 'uncertain.extxyz'} --db {run.cfg.database_url} --method "
                f"{run.cfg.reference.method}` and rerun active learning"
            )
        props: dict = {}
        frames = res.frames
        dt = p.timestep * p.interval
        if len(frames) >= 10 and start.pbc.all():
            props = liquid_properties(run, frames, dt, out_dir / "properties")
        elif len(frames) >= 10:
            equilibrium = relaxed(start, pot.calculator()) if is_molecule(start) else None
            props = trajectory_properties(
                frames,
                dt,
                out_dir / "properties",
                potential=pot,
                equilibrium=equilibrium,
                reference_frequencies=validation_reference_frequencies(run),
            )
            if "spectrum" in props:
                run.say(f"spectrum peaks (cm⁻¹): {', '.join(f'{x:.0f}' for x in props['spectrum']['peaks_cm-1'])}")
            if "harmonic_cm-1" in props:
                run.say(f"harmonic frequencies (cm⁻¹): {', '.join(f'{x:.0f}' for x in props['harmonic_cm-1'])}")
            if "diffusion" in props:
                run.say(f"diffusion coefficient: {props['diffusion']['D_cm2_per_s']:.3g} cm²/s")
        else:
            props = {"skipped": f"only {len(frames)} frames recorded: too few for properties"}
        temps = res.temperatures
        result = {
            "system": system,
            "steps_done": res.steps_done,
            "steps": p.steps,
            # µs of wall time per atom and step (the MD loop with the watchdog, trajectory writing included)
            "us_per_atom_step": 1e6 * res.seconds / (res.steps_done * len(start)) if res.steps_done else None,
            "stopped_because": res.stopped_because,
            "n_frames": len(frames),
            "n_uncertain": len(res.uncertain_frames),
            "max_uncertainty": max_seen,
            "segments_resumed": resumed,
            "mean_temperature": float(temps.mean()) if len(temps) else None,
            "temperature": summary.to_dict() if (summary := res.temperature_summary()) is not None else None,
            "seconds": res.seconds,
            "trajectory": str(out_dir / p.trajectory),
            "uncertain_file": str(out_dir / "uncertain.extxyz"),
            "md_plot": str(md_png),
            "properties": props,
            "calibration_scale": scale,
            "watchdog": {
                "warn": warn,
                "stop": stop,
                "from": origin,
                "density_g_per_cm3": list(density_range) if density_range else None,
                "density_from": density_origin,
            },
        }
        atomic_write_json(out_dir / "production.json", result)
        return result


def liquid_properties(run: ProjectRun, frames: list, dt: float, out_dir: Path) -> dict:
    """A periodic box's properties from the production frames (``dt`` fs apart): partial RDFs, self-diffusion with
    the Yeh-Hummer correction at ``production.viscosity``, the density series under NPT and the VDOS
    (:func:`mlpkit.md.liquid.condensed_properties`); the main numbers are said on the console."""
    from mlpkit.md.liquid import condensed_properties

    p = run.cfg.production
    props = condensed_properties(frames, dt, out_dir, temperature=p.temperature, viscosity=p.viscosity)
    peaks = [
        f"{r['pair']} {r['first_peak_A']:.2f} Å (g {r['first_peak_height']:.2f})"
        for r in props.get("rdf", [])
        if r["pair"] != "all"
    ]
    if peaks:
        run.say("RDF first peaks: " + ", ".join(peaks))
    if "diffusion" in props:
        d = props["diffusion"]
        run.say(
            f"self-diffusion ({d['element']}): {d['D_pbc_cm2_per_s']:.3g} cm²/s in the box, "
            f"{d['D_infinite_cm2_per_s']:.3g} cm²/s with the finite-size correction"
        )
        if d.get("warning"):
            run.say(f"  not a result: {d['warning']}")
    if "density" in props:
        rho = props["density"]
        run.say(f"density: {rho['mean_g_per_cm3']:.4f} ± {rho['standard_error_g_per_cm3']:.4f} g/cm³")
    return props


def _plot_md(res, timestep: float, warn: float, stop: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4), dpi=110)
    t = (np.arange(len(res.temperatures)) + 1) * timestep / 1000
    ax1.plot(t, res.temperatures, lw=0.6)
    ax1.set_xlabel("time (ps)")
    ax1.set_ylabel("temperature (K)")
    ax1.set_title("production MD: temperature")
    if len(res.uncertainties):
        tu = (np.arange(len(res.uncertainties)) + 1) * timestep / 1000
        ax2.plot(tu, res.uncertainties, lw=0.6)
        ax2.axhline(warn, color="orange", ls="--", lw=1, label=f"warn {warn:.3g} eV/Å")
        ax2.axhline(stop, color="red", ls="--", lw=1, label=f"stop {stop:.3g} eV/Å")
        ax2.legend(fontsize=8)
    ax2.set_xlabel("time (ps)")
    ax2.set_ylabel("uncertainty (eV/Å)")
    ax2.set_title("committee force uncertainty")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
