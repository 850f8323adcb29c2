"""Universal (pretrained) potentials: CHGNet from its wheel, offline; reference-energy alignment; fine-tuning."""

from mlpkit.potentials.universal.chgnet import CHGNetPotential

__all__ = ["CHGNetPotential"]
