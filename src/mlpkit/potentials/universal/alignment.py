"""Reference-energy alignment: per-element offsets that move a universal model's energies onto the user's DFT.

A universal model's absolute energies follow its training data (CHGNet: Materials Project plane-wave PBE(+U), with
its own per-element reference energies); a user's DFT (e.g. PySCF PBE/def2-SVP with all electrons) sits on another
scale, by hundreds of eV per atom. The difference is, to first order, a constant per element, so

    δ = argmin Σ_k (E_dft,k − E_model,k − Σ_Z n_kZ δ_Z)²          (least squares on composition)

and the aligned model predicts E_model + Σ_Z n_Z δ_Z. Forces and stress do not change. With a single composition
(all frames H2O) only Σ_Z n_Z δ_Z is determined: the minimum-norm solution is taken, exact for that composition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from mlpkit.data.records import reference_results
from mlpkit.errors import InputError


def fit_offsets(images: Sequence[Atoms], model_energy: np.ndarray) -> dict[str, float]:
    """Per-element offsets (eV per atom of the element) minimising the squared total-energy residual.

    images: labelled configurations (energy in eV); model_energy: (n,) eV, the model's total energies for them.
    """
    if not images:
        raise InputError("aligning reference energies needs labelled configurations")
    energies, _ = reference_results(images)
    numbers = sorted({int(z) for a in images for z in a.numbers})
    counts = np.array([[np.count_nonzero(a.numbers == z) for z in numbers] for a in images], dtype=float)
    offsets, *_ = np.linalg.lstsq(counts, energies - np.asarray(model_energy, dtype=float), rcond=None)
    return {chemical_symbols[z]: float(d) for z, d in zip(numbers, offsets, strict=True)}


def offset_energy(images: Sequence[Atoms], offsets: dict[str, float]) -> np.ndarray:
    """(n,) eV: Σ_Z n_Z δ_Z of each configuration (elements without an offset contribute 0)."""
    table = np.zeros(119)
    for symbol, value in offsets.items():
        table[chemical_symbols.index(symbol)] = value
    return np.array([float(table[a.numbers].sum()) for a in images])
