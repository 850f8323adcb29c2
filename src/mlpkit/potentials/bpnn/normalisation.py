"""The normalisation of a Behler-Parrinello potential, fitted on the training set before its networks are trained:
per-element reference energies (least squares on composition), per-element feature mean and standard deviation,
and the energy scale (RMS of the training force components)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from ase import Atoms

from mlpkit.data.records import reference_results
from mlpkit.descriptors.graph import GraphArrays, GraphBatch, collate


def fit_normalisation(module: torch.nn.Module, species: Sequence[str], train: Sequence[Atoms],
                      graph: Callable[[Atoms], GraphArrays], device: torch.device,
                      feature_std_floor: float = 0.0) -> None:  # fmt: skip
    """Set ``module``'s reference energies (eV per element), energy scale (eV/Å) and feature mean/std per element
    from the labelled configurations ``train`` (``graph``: the pairs of one configuration). Features whose scale
    is below ``feature_std_floor`` × the element's largest feature magnitude get that floor."""
    energies, forces = reference_results(train)
    counts = np.array([[a.get_chemical_symbols().count(s) for s in species] for a in train], dtype=float)
    refs, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    m = module
    m.reference_energies = torch.as_tensor(refs, dtype=torch.float64, device=device)
    comps = np.concatenate([f.ravel() for f in forces])
    residual = (energies - counts @ refs) / counts.sum(1)
    scale = float(np.sqrt(np.mean(comps**2))) if comps.size else 0.0
    if not scale > 1e-8:
        scale = max(float(np.std(residual)), 1e-3)
    m.energy_scale.fill_(scale)
    sums = torch.zeros(len(species), m.descriptor.n_features, dtype=torch.float64)
    sq = torch.zeros_like(sums)
    n = torch.zeros(len(species), dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, len(train), 64):
            batch = collate([graph(a) for a in train[start : start + 64]], torch.float64)
            g = m.features(_to(batch, m)).double().cpu()
            sp = batch.species.cpu()
            sums.index_add_(0, sp, g)
            sq.index_add_(0, sp, g * g)
            n.index_add_(0, sp, torch.ones_like(sp, dtype=torch.float64))
    mean = sums / n.clamp(min=1)[:, None]
    var = (sq / n.clamp(min=1)[:, None] - mean**2).clamp(min=0)
    std = torch.sqrt(var)
    # constant features (e.g. O-O terms in a single water molecule) carry no information: leave them unscaled
    std = torch.where(std > 1e-6 * (1 + mean.abs()), std, torch.ones_like(std))
    # a feature that barely varies in narrow data (one NVE run) would turn a modest change outside it into
    # thousands of standard deviations, and the network into forces of thousands of eV/Å: floor every
    # feature's scale at a fraction of the largest feature magnitude of its element (a feature that is ~0
    # everywhere in the data has no magnitude of its own to be a fraction of)
    floor = feature_std_floor
    if floor > 0:
        typical = torch.sqrt(mean**2 + std**2).amax(dim=1, keepdim=True)
        std = torch.maximum(std, floor * typical)
    m.feature_mean.copy_(mean.to(m.feature_mean))
    m.feature_std.copy_(std.to(m.feature_std))


def _to(batch: GraphBatch, module: torch.nn.Module) -> GraphBatch:
    p = next(module.parameters())
    batch.vectors = batch.vectors.to(dtype=p.dtype, device=p.device)
    for name in ("species", "image", "centers", "neighbors", "n_atoms"):
        setattr(batch, name, getattr(batch, name).to(p.device))
    return batch
