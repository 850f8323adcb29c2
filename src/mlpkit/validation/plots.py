"""The report's figures beyond parity plots: per-element errors, NVE energies, frequencies, extrapolation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlpkit.validation.parity import _pyplot


def per_element_plot(train_per_element: dict, test_per_element: dict, path: str | Path) -> Path:
    """Bar chart of force MAE (meV/Å) per element, train and test side by side."""
    plt = _pyplot()
    symbols = sorted(set(train_per_element) | set(test_per_element))
    x = np.arange(len(symbols))
    fig, ax = plt.subplots(figsize=(4.8, 3.4), dpi=120)
    for k, (name, data) in enumerate((("train", train_per_element), ("test", test_per_element))):
        vals = [data.get(s, {}).get("forces_mae", np.nan) * 1000 for s in symbols]
        ax.bar(x + (k - 0.5) * 0.38, vals, width=0.38, label=name)
    ax.set_xticks(x, symbols)
    ax.set_ylabel("force MAE (meV/Å)")
    ax.set_title("Force error per element")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def nve_plot(nve, path: str | Path) -> Path:
    """Total, potential (shifted) and kinetic energy per atom (meV/atom) and temperature along the NVE run."""
    plt = _pyplot()
    t = nve.time_fs / 1000.0
    n = nve.n_atoms
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=120)
    e0 = nve.etot[0]
    axes[0].plot(t, (nve.epot - e0) / n * 1000, lw=0.8, label="E_pot − E_tot(0)")
    axes[0].plot(t, nve.ekin / n * 1000, lw=0.8, label="E_kin")
    axes[0].plot(t, (nve.etot - e0) / n * 1000, lw=1.4, color="k", label="E_tot − E_tot(0)")
    slope, _, _ = nve.drift()
    axes[0].set_title(f"NVE energies (drift {slope:+.3g} meV/atom/ps)")
    axes[0].set_xlabel("time (ps)")
    axes[0].set_ylabel("meV/atom")
    axes[0].legend(fontsize=7)
    axes[1].plot(t, nve.temperature, lw=0.8, color="tab:red")
    axes[1].set_xlabel("time (ps)")
    axes[1].set_ylabel("temperature (K)")
    axes[1].set_title("Temperature")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def frequency_plot(
    model: list[float], reference: list[float] | None, path: str | Path, reference_label: str = "reference"
) -> Path:
    """Harmonic frequencies (cm⁻¹) mode by mode, model and reference side by side."""
    plt = _pyplot()
    n = max(len(model), len(reference or []))
    x = np.arange(n)
    fig, ax = plt.subplots(figsize=(max(4.8, 0.45 * n + 2), 3.4), dpi=120)
    if reference is not None:
        # mode counts differ when one side relaxed to another shape (e.g. linear): pad, compare what exists
        m_pad = np.full(n, np.nan)
        r_pad = np.full(n, np.nan)
        m_pad[: len(model)] = model
        r_pad[: len(reference)] = reference
        ax.bar(x - 0.2, r_pad, width=0.4, label=reference_label, color="tab:gray")
        ax.bar(x + 0.2, m_pad, width=0.4, label="model", color="tab:blue")
        for i, (m, r) in enumerate(zip(m_pad, r_pad, strict=True)):
            if np.isfinite(m) and np.isfinite(r):
                ax.annotate(f"{m - r:+.1f}", (i, max(m, r)), ha="center", va="bottom", fontsize=7)
    else:
        ax.bar(x, model, width=0.5, label="model", color="tab:blue")
    ax.set_xticks(x, [str(i + 1) for i in x])
    ax.set_xlabel("mode")
    ax.set_ylabel("frequency (cm⁻¹)")
    ax.set_title("Harmonic frequencies (labels: model − reference)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def extrapolation_plot(descriptor_data: dict, path: str | Path) -> Path:
    """Histograms of nearest-training-neighbour descriptor distances, training atoms vs test atoms, per element."""
    plt = _pyplot()
    symbols = sorted(descriptor_data)
    fig, axes = plt.subplots(1, len(symbols), figsize=(4.2 * len(symbols), 3.2), dpi=120, squeeze=False)
    for ax, sym in zip(axes[0], symbols, strict=True):
        d = descriptor_data[sym]
        hi = max(float(np.max(d["train"])), float(np.max(d["test"])), d["edge"]) * 1.05
        bins = np.linspace(0, hi, 40)
        ax.hist(d["train"], bins=bins, alpha=0.6, density=True, label="train (to other train configs)")
        ax.hist(d["test"], bins=bins, alpha=0.6, density=True, label="test (to nearest train)")
        ax.axvline(d["edge"], color="k", ls="--", lw=1, label="edge")
        ax.set_title(f"{sym}: descriptor NN distance")
        ax.set_xlabel("distance (standardised features)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
