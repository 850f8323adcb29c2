"""What every potential family must pass, importable by third-party families: ``PotentialContract`` (pytest)."""

from mlpkit.testing.data import labelled_water, water_cluster

__all__ = ["PotentialContract", "labelled_water", "water_cluster"]


def __getattr__(name: str):
    # the contract needs pytest, which only a test run has: import it on first use
    if name == "PotentialContract":
        from mlpkit.testing.contract import PotentialContract

        return PotentialContract
    raise AttributeError(name)
