"""mlpkit: from DFT calculations to validated machine-learning interatomic potentials.

Packages, from the bottom layer up (tests/test_layering.py checks that no package imports a higher one):
``data`` (the dataset store), ``descriptors``, ``training``, ``potentials`` (families behind one protocol),
``labelers`` (reference methods), ``sampling`` (candidate configurations), ``execution`` (parallel labelling on
Dask), ``uncertainty``, ``md``, ``validation``, ``config`` (the configuration files), ``workflows`` (``mlpkit run``
and ``mlpkit learn`` as steps on one resume engine), ``cli`` and ``testing`` (the potential contract).

Units are ASE's throughout: eV, Å, fs via :mod:`ase.units`, K.
"""

from __future__ import annotations

from mlpkit.version import __version__


def load(path, **options):
    """Load a saved potential (any family) from the directory ``path``, or a pretrained one by name
    (``"chgnet"``, ``"chgnet:r2scan"``); ``options`` go to the family's loader (e.g. ``dtype="float32"``)."""
    from mlpkit.potentials.registry import load_potential

    return load_potential(path, **options)


__all__ = ["__version__", "load"]
