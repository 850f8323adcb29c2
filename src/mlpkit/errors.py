"""Exceptions with messages meant for the user; the CLI prints them and exits non-zero."""

from __future__ import annotations


class MlpkitError(Exception):
    """Base class: a problem the user can fix (bad input, missing package, inconsistent data)."""


class InputError(MlpkitError):
    """A structure, file, path or option that cannot be used as given."""


class UnsupportedSpeciesError(InputError):
    """A method or model was asked about an element it does not handle."""


class MixedMethodError(MlpkitError):
    """Training data would mix labels from different levels of theory."""


class LabelFailure(MlpkitError):
    """A reference calculation ran but did not give a usable result (no SCF convergence, NaN, ...)."""


class MissingDependencyError(MlpkitError):
    """An optional package (GPAW, psycopg2, ...) is needed for this and is not installed."""
