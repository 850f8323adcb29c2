"""How unsure a potential is: committees (ensembles, query by committee), MC-dropout, calibration, and the one
way workflows build and fit a model (:mod:`mlpkit.uncertainty.model_spec`)."""

from mlpkit.uncertainty.calibration import Calibration, calibrate, calibrate_prediction, plot_calibration
from mlpkit.uncertainty.committee import Committee, bootstrap_resample, combine_predictions
from mlpkit.uncertainty.mc_dropout import MCDropout
from mlpkit.uncertainty.model_spec import (
    CommitteeSpec,
    MemberSpec,
    ModelSpec,
    fit_model,
    train_committee,
    uncertainty_kind,
)

__all__ = [
    "Calibration",
    "Committee",
    "CommitteeSpec",
    "MCDropout",
    "MemberSpec",
    "ModelSpec",
    "bootstrap_resample",
    "calibrate",
    "calibrate_prediction",
    "combine_predictions",
    "fit_model",
    "plot_calibration",
    "train_committee",
    "uncertainty_kind",
]
