"""The closed-form fit of a linear potential: weighted ridge least squares on energies, forces and stress.

Rows (each multiplied by its weight and by the configuration's ``info[weight_key]``, default 1):

* energy of configuration ``c``: ``Σ_{i∈c} B(R_i) · c_{Z_i} / n_c = (E_c - Σ_i e_ref(Z_i)) / n_c``
* force component ``(a, x)``:   ``-Σ_i ∂B(R_i)/∂x_a · c_{Z_i} = F_ax``
* stress component (periodic configurations with a reference stress): ``(1/V) Σ_p r_p ⊗ ∂B/∂r_p · c = σ``

The design matrix is built block by block (:attr:`MTPFitSettings.chunk_pairs` pairs at a time) from the exact
pair Jacobian of the basis (forward-mode AD, vectorised over pairs) and folded at once into the normal
equations ``AᵀA c = Aᵀy``: memory grows with the number of coefficients, not with the data. Columns are
standardised (unit RMS over the rows) before the ridge ``λ = ridge · n_rows`` is added, so ``ridge`` is a
dimensionless fraction of the diagonal.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg
import torch
from ase import Atoms

from mlpkit.data.records import methods_of, reference_results, training_set_hash
from mlpkit.potentials.base import FitHistory
from mlpkit.potentials.mtp.grade import ActiveSet
from mlpkit.potentials.mtp.pairs import Pairs

if TYPE_CHECKING:
    from mlpkit.potentials.mtp.potential import MTPPotential
    from mlpkit.potentials.mtp.settings import MTPFitSettings

_VOIGT = ([0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1])


def reference_stress(atoms: Atoms) -> np.ndarray | None:
    """The reference stress (6,) eV/Å³ (Voigt, ASE sign) of a fully periodic configuration, else None."""
    calc = atoms.calc
    if calc is None or not atoms.pbc.all() or calc.results.get("stress") is None:
        return None
    s = np.asarray(calc.results["stress"], dtype=float)
    return s[_VOIGT] if s.shape == (3, 3) else s.reshape(6)


def composition_baseline(images: Sequence[Atoms], species: Sequence[str], energies: np.ndarray) -> np.ndarray:
    """Per-element reference energies (n_species,) eV: least squares of the energies on the composition
    (minimum norm when compositions are collinear, e.g. a single molecule)."""
    counts = np.array([[a.get_chemical_symbols().count(s) for s in species] for a in images], dtype=float)
    refs, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return refs


def solve_ridge(ata: np.ndarray, aty: np.ndarray, n_rows: int, ridge: float) -> np.ndarray:
    """Solve ``(AᵀA + λ D²) c = Aᵀy`` with columns standardised (``D`` = RMS of each column over the rows) and
    ``λ = ridge · n_rows``; a Cholesky solve, least squares if the matrix is not positive definite."""
    scale = np.sqrt(np.diag(ata) / max(n_rows, 1))
    scale = np.where(scale > 1e-300, scale, 1.0)
    normal = ata / scale[:, None] / scale[None, :]
    normal[np.diag_indices_from(normal)] += ridge * n_rows
    try:
        solution = scipy.linalg.solve(normal, aty / scale, assume_a="pos")
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        solution = np.linalg.lstsq(normal, aty / scale, rcond=None)[0]
    return solution / scale


def _chunks(images: Sequence[Atoms], cutoff: float, max_pairs: int) -> list[list[int]]:
    """Groups of configuration indices with about ``max_pairs`` pairs each (estimated from the density)."""
    out, current, load = [], [], 0
    for k, atoms in enumerate(images):
        n = len(atoms)
        if atoms.pbc.all():
            est = n * 4.19 * cutoff**3 * n / max(abs(atoms.cell.volume), 1e-9)
        else:
            est = n * (n - 1)
        if current and load + est > max_pairs:
            out.append(current)
            current, load = [], 0
        current.append(k)
        load += est
    if current:
        out.append(current)
    return out


def design_block(pot: MTPPotential, images: Sequence[Atoms], stress: bool):
    """Rows of a block of configurations, unweighted.

    Returns (energy rows (n, S*nb) (sum over atoms, not yet per atom), force rows (N, 3, S*nb), stress rows
    (n, 6, S*nb) or None, per-atom basis values (N, nb), species (N,), the Pairs).
    """
    S, nb = len(pot.species), pot.basis.n_basis
    pairs = Pairs(images, pot.species, pot.cutoff)
    vec, cen, nsp = pairs.tensors()
    n_img, N = len(images), len(pairs.species)
    spec = torch.as_tensor(pairs.species)
    with torch.no_grad():
        moments, values = pot.atom_basis(pairs)
        jac = pot.basis.pair_jacobian(moments, vec, cen, nsp)  # (P, 3, nb)
    energy = values.new_zeros(n_img * S, nb)
    energy.index_add_(0, torch.as_tensor(pairs.image) * S + spec, values)
    centre_species = spec[cen]
    forces = values.new_zeros(N * S, 3, nb)
    forces.index_add_(0, cen * S + centre_species, jac)  # F = -dE/dx; v = x_j - x_i
    forces.index_add_(0, torch.as_tensor(pairs.neighbors) * S + centre_species, -jac)
    forces = forces.reshape(N, S, 3, nb).permute(0, 2, 1, 3).reshape(N, 3, S * nb)
    stress_rows = None
    if stress:
        virial = values.new_zeros(n_img * S, 3, 3, nb)
        img = torch.as_tensor(pairs.image)[cen]
        virial.index_add_(0, img * S + centre_species, vec[:, :, None, None] * jac[:, None, :, :])
        virial = virial.reshape(n_img, S, 3, 3, nb).permute(0, 2, 3, 1, 4).reshape(n_img, 3, 3, S * nb)
        virial = 0.5 * (virial + virial.transpose(1, 2))
        vol = torch.as_tensor(pairs.volume)
        vol = torch.where(vol > 0, vol, torch.ones_like(vol))
        stress_rows = virial[:, _VOIGT[0], _VOIGT[1]] / vol[:, None, None]
    return energy.reshape(n_img, S * nb).numpy(), forces.numpy(), stress_rows, values.numpy(), pairs


def fit_linear(
    pot: MTPPotential, train: list[Atoms], valid: list[Atoms] | None, settings: MTPFitSettings
) -> FitHistory:
    """Fit ``pot``'s baseline and coefficients (and active set) on ``train``; see module docstring."""
    start = time.perf_counter()
    S, nb = len(pot.species), pot.basis.n_basis
    n_col = S * nb
    energies, forces = reference_results(train)
    pot.reference_energies = composition_baseline(train, pot.species, energies)
    ata = np.zeros((n_col, n_col))
    aty = np.zeros(n_col)
    n_rows = 0
    rows_by_species: list[list[np.ndarray]] = [[] for _ in range(S)]
    for block in _chunks(train, pot.cutoff, settings.chunk_pairs):
        images = [train[k] for k in block]
        stresses = [reference_stress(a) for a in images]
        want_stress = settings.stress_weight > 0 and any(s is not None for s in stresses)
        e_rows, f_rows, s_rows, values, pairs = design_block(pot, images, want_stress)
        w_conf = np.array([float(a.info.get(settings.weight_key, 1.0)) for a in images])
        n_at = pairs.n_atoms.astype(float)
        e_base = np.bincount(pairs.image, pot.reference_energies[pairs.species], minlength=len(images))
        blocks_a = [e_rows * (settings.energy_weight * w_conf / n_at)[:, None]]
        blocks_y = [(energies[block] - e_base) * settings.energy_weight * w_conf / n_at]
        w_atom = np.repeat(w_conf, pairs.n_atoms) * settings.force_weight
        blocks_a.append((f_rows * w_atom[:, None, None]).reshape(-1, n_col))
        blocks_y.append((np.concatenate([forces[k] for k in block]) * w_atom[:, None]).reshape(-1))
        if want_stress:
            has = np.array([s is not None for s in stresses])
            s_ref = np.array([s for s in stresses if s is not None])
            w = (settings.stress_weight * w_conf[has])[:, None]
            blocks_a.append((s_rows.numpy()[has] * w[:, :, None]).reshape(-1, n_col))
            blocks_y.append((s_ref * w).reshape(-1))
        a = np.concatenate(blocks_a)
        y = np.concatenate(blocks_y)
        ata += a.T @ a
        aty += a.T @ y
        n_rows += len(y)
        for s in range(S):
            rows_by_species[s].append(values[pairs.species == s])
    pot.coefficients = solve_ridge(ata, aty, n_rows, settings.ridge).reshape(S, nb)
    solve_seconds = time.perf_counter() - start
    if settings.active_set:
        pot.active_sets = [ActiveSet.select(np.concatenate(rows)) for rows in rows_by_species]
    pot.fitted = True
    seconds = time.perf_counter() - start
    metrics = {"fit_seconds": seconds, "solve_seconds": solve_seconds, "n_rows": float(n_rows)}
    metrics.update(_errors(pot, train, "train"))
    if valid:
        metrics.update(_errors(pot, valid, "valid"))
    methods = methods_of(train)
    pot.metadata.update(
        {
            "method": methods[0] if len(methods) == 1 else methods,
            "training_set_hash": training_set_hash(train),
            "n_train": len(train),
            "n_valid": len(valid) if valid else 0,
            "n_basis": nb,
            "fit_settings": settings.model_dump(),
            "fit_seconds": seconds,
            "metrics": metrics,
        }
    )
    return FitHistory(
        epochs=[metrics],
        best_epoch=1,
        best_valid_loss=metrics.get("valid_forces_mae", float("nan")),
        seconds=seconds,
        stopped_because="closed-form solve",
    )


def _errors(pot: MTPPotential, images: Sequence[Atoms], prefix: str) -> dict[str, float]:
    """``{prefix}_energy_mae`` (eV/atom) and ``{prefix}_forces_mae`` (eV/Å) of ``pot`` on labelled ``images``."""
    energies, forces = reference_results(images)
    pred = pot.predict(images)
    n = np.array([len(a) for a in images], dtype=float)
    f_err = np.concatenate([(p - f).ravel() for p, f in zip(pred.forces, forces, strict=True)])
    return {
        f"{prefix}_energy_mae": float(np.mean(np.abs(pred.energy - energies) / n)),
        f"{prefix}_forces_mae": float(np.mean(np.abs(f_err))) if f_err.size else 0.0,
    }
