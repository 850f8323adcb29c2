"""The trust window of an iteration: lower and upper bounds on the calibrated uncertainty (eV/Å), from the
configuration or derived from the data (see :mod:`mlpkit.config.active_learning` for what 'auto' means)."""

from __future__ import annotations

import numpy as np

from mlpkit.workflows.active_learning.select import auto_lower, auto_upper


def trust_bounds(run, committee, valid, train, cal_valid) -> dict:
    tr = run.cfg.trust
    scale = (
        cal_valid.scale
        if (tr.calibrate and cal_valid is not None and np.isfinite(cal_valid.scale) and cal_valid.scale > 0)
        else 1.0
    )
    scale_from = "fitted on validation data" if scale != 1.0 else "none (raw committee spread)"
    if tr.lower == "auto":
        ref = valid if len(valid) >= 3 else train
        sigma = committee.predict(ref).score()
        lower = auto_lower(scale * sigma, tr.lower_quantile)
        lower_from = f"q{tr.lower_quantile:g} of calibrated σ on {'validation' if ref is valid else 'training'} data"
    else:
        lower, lower_from = float(tr.lower), "config"
    if tr.upper == "auto":
        upper = auto_upper([*train, *valid])
        upper_from = "RMS reference atomic force of the labelled data"
    else:
        upper, upper_from = float(tr.upper), "config"
    if lower >= upper:
        # an unusually poor committee: keep a window open instead of discarding every frame
        lower_from += f" (was {lower:.3g} >= upper; set to upper/3)"
        lower = upper / 3
    return {
        "lower": float(lower),
        "upper": float(upper),
        "scale": float(scale),
        "lower_from": lower_from,
        "upper_from": upper_from,
        "scale_from": scale_from,
    }
