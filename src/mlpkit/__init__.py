"""mlpkit: from DFT calculations to validated machine-learning interatomic potentials.

The pipeline, one module per stage: ``data`` (the dataset store), ``labelers`` (reference methods),
``sampling`` (candidate configurations), ``execution`` (parallel labelling on Dask), ``descriptors``,
``models`` (potential families behind one protocol), ``training``, ``uncertainty``, ``active``
(the active-learning loop), ``md``, ``validation`` and ``cli``.

Units are ASE's throughout: eV, Å, fs via :mod:`ase.units`, K.
"""

from __future__ import annotations

__version__ = "0.1.0"


def load(path):
    """Load a saved potential (any family) from the directory ``path``."""
    from mlpkit.potentials.registry import load_potential

    return load_potential(path)


__all__ = ["__version__", "load"]
