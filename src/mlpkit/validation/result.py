"""The outcome of a validation run: every check row plus the numbers and files behind them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlpkit.validation.checks import FAIL, STATUSES, CheckResult, _jsonable
from mlpkit.validation.settings import ValidationSettings

JSON_FILE = "validation.json"
HTML_FILE = "report.html"


@dataclass
class ValidationReport:
    """The outcome of :func:`validate`: every check row plus the numbers and files behind them."""

    checks: list[CheckResult]
    out_dir: Path
    settings: ValidationSettings
    metrics: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in STATUSES}

    @property
    def passed(self) -> bool:
        """True when no check FAILed (WARN and SKIP allowed)."""
        return not any(c.status == FAIL for c in self.checks)

    def check(self, key: str) -> CheckResult:
        """The row with this key (``train_errors``, ``nve_energy``, ``vibrations``, ...)."""
        for c in self.checks:
            if c.key == key:
                return c
        raise KeyError(f"no check {key!r}; have {[c.key for c in self.checks]}")

    @property
    def json_path(self) -> Path:
        return self.out_dir / JSON_FILE

    @property
    def html_path(self) -> Path:
        return self.out_dir / HTML_FILE

    def to_dict(self) -> dict:
        return _jsonable(
            {
                "passed": self.passed,
                "counts": self.counts,
                "checks": [c.to_dict() for c in self.checks],
                "metrics": self.metrics,
                "timings_seconds": self.timings,
                "seconds": self.seconds,
                "info": self.info,
                "settings": self.settings.model_dump(),
                **self.extra,
            }
        )
