"""Loss on energies (per atom) and forces, and the sums needed to aggregate metrics over batches."""

from __future__ import annotations

import torch


def energy_force_loss(
    energy: torch.Tensor,
    energy_ref: torch.Tensor,
    n_atoms: torch.Tensor,
    forces: torch.Tensor,
    forces_ref: torch.Tensor,
    force_weight: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``mean((ΔE/N)²) + force_weight · mean(ΔF²)`` in eV²/atom² and eV²/Å².

    energy, energy_ref: (n,) eV; n_atoms: (n,); forces, forces_ref: (N, 3) eV/Å.
    Returns the loss (differentiable) and sums for exact aggregation over batches:
    ``se_energy`` (Σ (ΔE/N)²), ``n_energy``, ``se_forces`` (Σ ΔF²), ``n_forces`` (components),
    ``ae_energy``/``ae_forces`` (Σ |Δ|) for MAEs.
    """
    de = (energy - energy_ref) / n_atoms.to(energy.dtype)
    df = forces - forces_ref
    e_mse = torch.mean(de**2)
    f_mse = torch.mean(df**2) if df.numel() else torch.zeros((), dtype=energy.dtype)
    loss = e_mse + force_weight * f_mse
    stats = {
        "se_energy": float((de.detach() ** 2).sum()),
        "ae_energy": float(de.detach().abs().sum()),
        "n_energy": float(de.numel()),
        "se_forces": float((df.detach() ** 2).sum()),
        "ae_forces": float(df.detach().abs().sum()),
        "n_forces": float(df.numel()),
    }
    return loss, stats


def summarize(stats: list[dict[str, float]], force_weight: float) -> dict[str, float]:
    """Aggregate batch sums into loss, RMSE and MAE (eV/atom, eV/Å) over a whole data set."""
    tot = {k: sum(s[k] for s in stats) for k in stats[0]}
    ne, nf = max(tot["n_energy"], 1.0), max(tot["n_forces"], 1.0)
    e_mse, f_mse = tot["se_energy"] / ne, tot["se_forces"] / nf
    return {
        "loss": e_mse + force_weight * f_mse,
        "energy_rmse": e_mse**0.5,
        "energy_mae": tot["ae_energy"] / ne,
        "forces_rmse": f_mse**0.5,
        "forces_mae": tot["ae_forces"] / nf,
    }
