"""Parity plots (reference vs model) and error histograms, written as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlpkit.validation.metrics import ErrorTable


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def parity_plots(
    table: ErrorTable, out_dir: str | Path, label: str = "model", reference: str = "DFT"
) -> dict[str, Path]:
    """Write ``parity_energy.png`` and ``parity_forces.png`` (with the y = x line and the MAE on the plot).

    Energies are shown per atom relative to the mean reference energy (meV/atom), forces in eV/Å.
    Returns {"energy": path, "forces": path}.
    """
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}

    shift = table.energy_ref.mean()
    e_ref = (table.energy_ref - shift) * 1000
    e_pred = (table.energy_pred - shift) * 1000
    mae_e = np.mean(np.abs(e_pred - e_ref))
    fig, ax = plt.subplots(figsize=(4.8, 4.5), dpi=120)
    ax.scatter(e_ref, e_pred, s=10, alpha=0.7, edgecolors="none")
    _diagonal(ax, e_ref, e_pred)
    ax.set_xlabel(f"{reference} energy (meV/atom, shifted)")
    ax.set_ylabel(f"{label} energy (meV/atom, shifted)")
    ax.set_title(f"Energy parity  MAE = {mae_e:.3f} meV/atom")
    fig.tight_layout()
    paths["energy"] = out_dir / "parity_energy.png"
    fig.savefig(paths["energy"])
    plt.close(fig)

    mae_f = np.mean(np.abs(table.forces_pred - table.forces_ref)) * 1000
    fig, ax = plt.subplots(figsize=(4.8, 4.5), dpi=120)
    for symbol in np.unique(table.forces_symbols):
        m = table.forces_symbols == symbol
        ax.scatter(table.forces_ref[m], table.forces_pred[m], s=6, alpha=0.6, edgecolors="none", label=str(symbol))
    _diagonal(ax, table.forces_ref, table.forces_pred)
    ax.set_xlabel(f"{reference} force component (eV/Å)")
    ax.set_ylabel(f"{label} force component (eV/Å)")
    ax.set_title(f"Force parity  MAE = {mae_f:.1f} meV/Å")
    ax.legend(loc="upper left", markerscale=2)
    fig.tight_layout()
    paths["forces"] = out_dir / "parity_forces.png"
    fig.savefig(paths["forces"])
    plt.close(fig)
    return paths


def error_histograms(table: ErrorTable, out_dir: str | Path) -> Path:
    """Histogram of energy (meV/atom) and force-component (meV/Å) errors in ``error_histograms.png``."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), dpi=120)
    axes[0].hist((table.energy_pred - table.energy_ref) * 1000, bins=40, color="tab:blue")
    axes[0].set_xlabel("energy error (meV/atom)")
    axes[1].hist((table.forces_pred - table.forces_ref) * 1000, bins=60, color="tab:orange")
    axes[1].set_xlabel("force component error (meV/Å)")
    for ax in axes:
        ax.set_ylabel("count")
    fig.tight_layout()
    path = out_dir / "error_histograms.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def _diagonal(ax, x, y) -> None:
    lo = float(min(np.min(x), np.min(y)))
    hi = float(max(np.max(x), np.max(y)))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, label="y = x")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
