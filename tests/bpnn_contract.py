"""The contract settings of a small Behler-Parrinello network, shared by every test class that wraps one (the BPNN
itself, committees, MC-dropout, Δ-learning)."""

from __future__ import annotations

from mlpkit.testing import PotentialContract


class SmallBPNNContract(PotentialContract):
    """Contract settings for a 32x32 BPNN with a 3.5 Å cutoff (see :func:`small_bpnn`)."""

    fit_settings = {"epochs": 3, "progress": False, "batch_size": 10}
    tiny_fit_settings = {
        "epochs": 400,
        "progress": False,
        "valid_fraction": 0.0,
        "batch_size": 12,
        "learning_rate": 1e-2,
    }
    tiny_energy_mae = 5e-4  # eV/atom
    tiny_forces_mae = 0.03  # eV/Å


#: hyperparameters of the small network: a cutoff that reaches between the molecules of the test clusters
SMALL_BPNN = {"cutoff": 3.5, "hidden": [32, 32], "dtype": "float64"}
