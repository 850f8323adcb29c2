"""The report's and the summary's part for a periodic box (a liquid): RDF peaks, self-diffusion with its finite-size
correction, the NPT density and the vibrational density of states of the production run
(:func:`mlpkit.md.liquid.condensed_properties`)."""

from __future__ import annotations

from mlpkit.workflows.project.formatting import format_number as _num

#: what each figure of the condensed-phase properties shows (key of ``properties["plots"]`` → caption)
LIQUID_FIGURES = (
    ("rdf", "radial distribution functions: all atoms and every element pair"),
    ("msd", "mean-squared displacement and the Einstein fit"),
    ("density", "density along the NPT run (the mean leaves out the first 20 %)"),
    ("vdos", "vibrational density of states (velocity autocorrelation)"),
)


def liquid_summary(props: dict) -> dict:
    """The headline numbers of a periodic production run, for ``summary.json``: RDF first peaks (Å, height) per
    pair, D in the box and extrapolated to an infinite box (cm²/s), the NPT density (g/cm³), the VDOS peaks (cm⁻¹)."""
    out: dict = {}
    rdf = {r["pair"]: [r.get("first_peak_A"), r.get("first_peak_height")] for r in props.get("rdf", [])}
    if rdf:
        out["rdf_first_peak_A_height"] = rdf
    d = props.get("diffusion")
    if d:
        out["diffusion_cm2_per_s"] = {
            "element": d.get("element"),
            "box": d.get("D_pbc_cm2_per_s"),
            "infinite_box": d.get("D_infinite_cm2_per_s"),
            "box_length_A": d.get("box_length_A"),
            "msd_exponent": d.get("msd_exponent"),
            "warning": d.get("warning"),
        }
    rho = props.get("density")
    if rho:
        out["density_g_per_cm3"] = {
            "mean": rho.get("mean_g_per_cm3"),
            "standard_error": rho.get("standard_error_g_per_cm3"),
        }
    v = props.get("vdos")
    if v:
        out["vdos_peaks_cm-1"] = v.get("peaks_cm-1")
    return out


def liquid_section(page, props: dict, production) -> None:
    """Tables of the condensed-phase properties (``props`` from the production stage) on the report ``page``;
    ``production`` is the configuration's production section (ensemble, pressure, viscosity). Figures are added by
    the caller with :data:`LIQUID_FIGURES`."""
    rows = [
        [r.get("pair"), _num(r.get("first_peak_A"), "{:.3f}"), _num(r.get("first_peak_height"), "{:.2f}")]
        for r in props.get("rdf", [])
    ]
    # the experimental numbers quoted are water's: only for a box of H and O
    water = {r.get("pair") for r in props.get("rdf", [])} == {"all", "O-O", "O-H", "H-H"}
    if rows:
        page.add_table(["RDF pair", "first peak (Å)", "g at the first peak"], rows)
        page.add_paragraph(
            ("Experiment for liquid water at 298 K (X-ray, Skinner et al. 2013): O-O first peak at 2.80 Å, height "
             "2.57. " if water else "")
            + "g(r) stops at half the shortest cell width, and a short run leaves it noisy."
        )  # fmt: skip
    d = props.get("diffusion")
    if d:
        page.add_table(
            ["self-diffusion", "value"],
            [
                ["atoms followed", d.get("element") or "all"],
                ["D in the periodic box (cm²/s)", _num(d.get("D_pbc_cm2_per_s"))],
                [
                    "Yeh-Hummer correction k_B T ξ / (6π η L) (cm²/s)",
                    f"{_num(d.get('yeh_hummer_correction_cm2_per_s'))} (L = {_num(d.get('box_length_A'), '{:.2f}')} Å, "
                    f"η = {_num(d.get('viscosity_Pa_s'))} Pa·s, T = {_num(d.get('temperature_K'), '{:.0f}')} K)",
                ],
                ["D extrapolated to an infinite box (cm²/s)", _num(d.get("D_infinite_cm2_per_s"))],
                ["MSD fit window (fs)", _num(d.get("fit_range_fs"))],
                ["MSD ∝ t^α in the window: α (diffusive 1, ballistic 2)", _num(d.get("msd_exponent"), "{:.2f}")],
            ],
        )
        if d.get("warning"):
            page.add_paragraph(f"Not a result: {d['warning']}.")
        page.add_paragraph(
            ("Experiment for water at 298 K: 2.3e-5 cm²/s. " if water else "")
            + "A run shorter than a few picoseconds has not left the ballistic and caging regime and gives no "
            "converged D."
        )
    rho = props.get("density")
    if rho:
        page.add_table(
            ["density (NPT)", "value"],
            [
                [
                    f"mean at {production.pressure:g} bar (g/cm³)",
                    f"{_num(rho.get('mean_g_per_cm3'), '{:.4f}')} ± "
                    f"{_num(rho.get('standard_error_g_per_cm3'), '{:.4f}')}",
                ],
                [
                    "range (g/cm³)",
                    f"{_num(rho.get('min_g_per_cm3'), '{:.4f}')} – {_num(rho.get('max_g_per_cm3'), '{:.4f}')}",
                ],
                ["frames averaged", rho.get("frames_averaged")],
            ],
        )
    elif production.ensemble != "npt":
        page.add_paragraph(f"Fixed cell ({production.ensemble.upper()}): no density; run production NPT to get one.")
    v = props.get("vdos")
    if v:
        page.add_paragraph(
            "VDOS peaks (cm⁻¹): "
            + ", ".join(f"{x:.0f}" for x in v.get("peaks_cm-1", []))
            + f" (resolution {_num(v.get('resolution_cm-1'), '{:.0f}')} cm⁻¹, Nyquist limit "
            f"{_num(v.get('nyquist_cm-1'), '{:.0f}')} cm⁻¹)."
        )
