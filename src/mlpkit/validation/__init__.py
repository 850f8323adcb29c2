"""Is the potential right? Metrics, parity plots, the source's quality checklist, and one HTML report.

``validate(potential, train, test, out_dir=...)`` runs every check (errors, NVE energy conservation,
invariances, finite-difference gradients, force magnitude, harmonic frequencies against the reference
method, extrapolation) and writes ``validation.json`` + a self-contained ``report.html``.
:class:`~mlpkit.validation.html.HtmlReport` is the reusable report builder.
"""

from mlpkit.validation.checks import FAIL, PASS, SKIP, WARN, CheckResult
from mlpkit.validation.html import HtmlReport
from mlpkit.validation.metrics import ErrorTable, error_table, evaluate
from mlpkit.validation.report import ValidationReport, reference_from_method, validate
from mlpkit.validation.settings import ValidationSettings

__all__ = [
    "FAIL",
    "PASS",
    "SKIP",
    "WARN",
    "CheckResult",
    "ErrorTable",
    "HtmlReport",
    "ValidationReport",
    "ValidationSettings",
    "error_table",
    "evaluate",
    "reference_from_method",
    "validate",
]
