"""How unsure a potential is: committees (ensembles, query by committee), MC-dropout, and calibration."""

from mlpkit.uncertainty.calibration import Calibration, calibrate, calibrate_prediction, plot_calibration
from mlpkit.uncertainty.committee import Committee, bootstrap_resample, combine_predictions, train_committee
from mlpkit.uncertainty.mc_dropout import MCDropout

__all__ = [
    "Calibration",
    "Committee",
    "MCDropout",
    "bootstrap_resample",
    "calibrate",
    "calibrate_prediction",
    "combine_predictions",
    "plot_calibration",
    "train_committee",
]
