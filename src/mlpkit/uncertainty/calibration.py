"""How well a potential's predicted σ ranks and scales against its true error, on labelled data.

Two questions, two numbers:

* **ranking**: Spearman's ρ between predicted σ and the true error, per configuration (max over atoms of the
  norm of the per-atom force std vs the max over atoms of the norm of the per-atom force error) and per atom
  (norm of the force std vs norm of the force error). ρ near 1: the most uncertain frames are the worst ones,
  which is all that top-k selection needs.
* **scale**: raw committee spreads are usually too small (members share most of their data). We fit one
  factor ``s`` so that ``s·σ`` estimates the error:

  - ``scale``: least squares through the origin of the per-configuration max force error against σ_max,
    ``s = Σ σ·e / Σ σ²``. Thresholds in eV/Å (trust window, watchdog) apply to ``s·σ_max``, so a user's
    "0.1 eV/Å" means "an expected worst atomic force error of 0.1 eV/Å", not a raw spread.
  - ``scale_gaussian``: the maximum-likelihood factor if each force component's error were N(0, (s·σ)²),
    ``s² = mean((Δ/σ)²)`` (the calibration of Musil et al., JCTC 2019), reported for comparison.

Use data the committee did not train on (a validation or test set); on training data σ and errors are both
biased low.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from mlpkit.data.records import reference_results
from mlpkit.errors import InputError
from mlpkit.potentials.base import Potential, Prediction

#: σ below this (eV/Å) is treated as this, so ratios stay finite
_TINY = 1e-12


@dataclass
class Calibration:
    """Result of :func:`calibrate`. σ and errors in eV/Å; arrays are per configuration unless named per atom."""

    n_configs: int
    spearman_config: float
    spearman_atom: float
    scale: float
    scale_gaussian: float
    sigma_max: np.ndarray = field(repr=False)
    error_max: np.ndarray = field(repr=False)
    sigma_atom: np.ndarray = field(repr=False)
    error_atom: np.ndarray = field(repr=False)
    note: str = ""

    def calibrated(self, sigma: np.ndarray | float) -> np.ndarray | float:
        """σ (raw, eV/Å) → calibrated σ (eV/Å) = scale · σ."""
        return self.scale * np.asarray(sigma) if not np.isscalar(sigma) else self.scale * float(sigma)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("sigma_max", "error_max", "sigma_atom", "error_atom"):
            d.pop(key)
        d["calibrated_sigma_max_mean"] = float(np.mean(self.scale * self.sigma_max)) if self.n_configs else None
        d["error_max_mean"] = float(np.mean(self.error_max)) if self.n_configs else None
        return d


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (NaN for fewer than 3 points or a constant input)."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def calibrate_prediction(images: Sequence[Atoms], pred: Prediction) -> Calibration:
    """Calibration numbers from an existing prediction (with ``forces_std``) and the labels of ``images``."""
    if pred.forces_std is None:
        raise InputError("this potential gives no uncertainty (forces_std); use a Committee or MC-dropout")
    _, f_ref = reference_results(images)
    err_atom, sig_atom, err_max, sig_max, z2 = [], [], [], [], []
    for fr, fp, fs in zip(f_ref, pred.forces, pred.forces_std, strict=True):
        d = np.asarray(fp) - fr  # (n_atoms, 3)
        s = np.maximum(np.asarray(fs), _TINY)
        e_a = np.linalg.norm(d, axis=1)
        s_a = np.linalg.norm(s, axis=1)
        err_atom.append(e_a)
        sig_atom.append(s_a)
        err_max.append(e_a.max())
        sig_max.append(s_a.max())
        z2.append(((d / s) ** 2).ravel())
    e_max, s_max = np.array(err_max), np.array(sig_max)
    e_atom, s_atom = np.concatenate(err_atom), np.concatenate(sig_atom)
    scale = float(np.sum(s_max * e_max) / np.sum(s_max**2))
    scale_g = float(np.sqrt(np.mean(np.concatenate(z2))))
    note = "" if len(images) >= 10 else f"only {len(images)} configurations: treat these numbers as rough"
    return Calibration(
        n_configs=len(images),
        spearman_config=spearman(s_max, e_max),
        spearman_atom=spearman(s_atom, e_atom),
        scale=scale,
        scale_gaussian=scale_g,
        sigma_max=s_max,
        error_max=e_max,
        sigma_atom=s_atom,
        error_atom=e_atom,
        note=note,
    )


def calibrate(potential: Potential, images: Sequence[Atoms], batch_size: int = 64) -> Calibration:
    """Predict labelled ``images`` with an uncertainty-aware ``potential`` and measure its calibration."""
    images = list(images)
    if not images:
        raise InputError("calibration needs at least one labelled configuration")
    if not potential.has_uncertainty:
        raise InputError(f"a {potential.family} potential gives no uncertainty; use a Committee or MC-dropout")
    preds = [potential.predict(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    merged = Prediction(
        energy=np.concatenate([p.energy for p in preds]),
        forces=[f for p in preds for f in p.forces],
        energy_std=np.concatenate([p.energy_std for p in preds]),
        forces_std=[f for p in preds for f in p.forces_std],
    )
    return calibrate_prediction(images, merged)


def plot_calibration(cal: Calibration, path: str | Path, title: str = "") -> Path:
    """σ vs true error (log-log), per configuration, with y = x and y = scale·x; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.8, 4.5), dpi=120)
    s = np.maximum(cal.sigma_max, _TINY)
    e = np.maximum(cal.error_max, _TINY)
    ax.scatter(s, e, s=10, alpha=0.7, edgecolors="none", label="configurations")
    lo = min(s.min(), e.min() / max(cal.scale, _TINY)) * 0.8
    hi = max(s.max(), e.max()) * 1.25
    xs = np.geomspace(lo, hi, 50)
    ax.plot(xs, xs, "k--", lw=0.8, label="error = σ")
    ax.plot(xs, cal.scale * xs, "r-", lw=1.0, label=f"error = {cal.scale:.2f}·σ (fit)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("predicted σ: max atomic force std (eV/Å)")
    ax.set_ylabel("true max atomic force error (eV/Å)")
    ax.set_title(title or f"Spearman ρ = {cal.spearman_config:.2f} (n = {cal.n_configs})", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
