"""Loss on energies (per atom), forces and (periodic cells) stress, and the sums needed to aggregate metrics over
batches."""

from __future__ import annotations

import torch


def energy_force_loss(
    energy: torch.Tensor,
    energy_ref: torch.Tensor,
    n_atoms: torch.Tensor,
    forces: torch.Tensor,
    forces_ref: torch.Tensor,
    force_weight: float,
    stress: torch.Tensor | None = None,
    stress_ref: torch.Tensor | None = None,
    stress_weight: float = 0.0,
    force_relative: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``mean((ΔE/N)²) + force_weight · mean(w ΔF²) [+ stress_weight · mean(Δσ²)]`` in eV²/atom², eV²/Å², eV²/Å⁶.

    ``w = 1`` unless ``force_relative`` = F0 > 0 (eV/Å): then ``w_i = (F0 / (|F_ref,i| + F0))²`` per atom, so an
    atom's force error counts absolutely where its reference force is small (≪ F0) and relative to that force where
    it is large (DeePMD-kit's ``relative_f``, scaled to leave small forces' weight at 1). Near a minimum, where
    the harmonic frequencies are decided, forces are ~1 eV/Å; a hot frame's are 5-10 eV/Å and, unweighted, its
    larger absolute errors dominate the fit.

    energy, energy_ref: (n,) eV; n_atoms: (n,); forces, forces_ref: (N, 3) eV/Å; stress, stress_ref: (m, 6) eV/Å³,
    Voigt, the rows of the configurations that have a reference stress (m may be 0; the term is left out when
    ``stress`` is None or ``stress_weight`` is 0).
    Returns the loss (differentiable) and sums for exact aggregation over batches:
    ``se_energy`` (Σ (ΔE/N)²), ``n_energy``, ``se_forces`` (Σ ΔF²), ``n_forces`` (components), ``se_stress``,
    ``n_stress`` (components), ``ae_energy``/``ae_forces``/``ae_stress`` (Σ |Δ|) for MAEs.
    """
    de = (energy - energy_ref) / n_atoms.to(energy.dtype)
    df = forces - forces_ref
    e_mse = torch.mean(de**2)
    if df.numel() and force_relative > 0:
        w = (force_relative / (torch.linalg.norm(forces_ref, dim=1, keepdim=True) + force_relative)) ** 2
        f_mse = torch.mean(w * df**2)
    else:
        f_mse = torch.mean(df**2) if df.numel() else torch.zeros((), dtype=energy.dtype)
    loss = e_mse + force_weight * f_mse
    ds = None
    if stress is not None and stress_ref is not None and stress.numel():
        ds = stress - stress_ref
        if stress_weight > 0:
            loss = loss + stress_weight * torch.mean(ds**2)
    stats = {
        "se_energy": float((de.detach() ** 2).sum()),
        "ae_energy": float(de.detach().abs().sum()),
        "n_energy": float(de.numel()),
        "se_forces": float((df.detach() ** 2).sum()),
        "ae_forces": float(df.detach().abs().sum()),
        "n_forces": float(df.numel()),
        "se_stress": 0.0 if ds is None else float((ds.detach() ** 2).sum()),
        "ae_stress": 0.0 if ds is None else float(ds.detach().abs().sum()),
        "n_stress": 0.0 if ds is None else float(ds.numel()),
    }
    return loss, stats


def summarize(stats: list[dict[str, float]], force_weight: float, stress_weight: float = 0.0) -> dict[str, float]:
    """Aggregate batch sums into loss, RMSE and MAE (eV/atom, eV/Å; stress_rmse/stress_mae in eV/Å³ when the data
    had stress) over a whole data set."""
    tot = {k: sum(s.get(k, 0.0) for s in stats) for k in stats[0]}
    ne, nf = max(tot["n_energy"], 1.0), max(tot["n_forces"], 1.0)
    e_mse, f_mse = tot["se_energy"] / ne, tot["se_forces"] / nf
    out = {
        "loss": e_mse + force_weight * f_mse,
        "energy_rmse": e_mse**0.5,
        "energy_mae": tot["ae_energy"] / ne,
        "forces_rmse": f_mse**0.5,
        "forces_mae": tot["ae_forces"] / nf,
    }
    if tot.get("n_stress", 0.0) > 0:
        s_mse = tot["se_stress"] / tot["n_stress"]
        out["loss"] += stress_weight * s_mse
        out.update(stress_rmse=s_mse**0.5, stress_mae=tot["ae_stress"] / tot["n_stress"])
    return out
