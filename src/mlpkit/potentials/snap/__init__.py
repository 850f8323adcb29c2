"""The SNAP family: a linear model on LAMMPS's bispectrum, fitted by mlpkit, run by LAMMPS (optional extra).

``engine`` (LAMMPS set-up, ``compute snap`` rows, ``pair_style snap`` evaluation, file writing), ``potential``
(:class:`SNAPPotential`, :func:`export_lammps`). Importing this package does not import LAMMPS.
"""

from mlpkit.potentials.snap.potential import SNAPHyperparameters, SNAPPotential, export_lammps

__all__ = ["SNAPHyperparameters", "SNAPPotential", "export_lammps"]
