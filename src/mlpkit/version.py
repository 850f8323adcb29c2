"""The version of mlpkit (the one place it is written in the package)."""

__version__ = "0.1.0"
