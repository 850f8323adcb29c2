"""Δ-learning: any family on top of a fixed energy term (ZBL repulsion, GFN2-xTB, a reference method)."""

from mlpkit.potentials.delta.potential import DeltaHyperparameters, DeltaPotential
from mlpkit.potentials.delta.terms import ZBL, MethodTerm, make_term

__all__ = ["ZBL", "DeltaHyperparameters", "DeltaPotential", "MethodTerm", "make_term"]
