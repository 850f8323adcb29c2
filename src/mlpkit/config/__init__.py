"""The configuration files of mlpkit, one module per group of sections.

``project`` (:class:`ProjectConfig`, the file of ``mlpkit run``) is made of ``system`` (project, system, reference,
execution), ``sampling``, ``model``, ``validation``, ``active_learning`` and ``production`` (production, speed,
report) sections; ``active_learning`` also holds :class:`ActiveLearningConfig`, the file of ``mlpkit learn``,
which shares its sections with the project file. ``errors`` and ``commented`` turn the schema into messages and
documented YAML; ``init`` writes a new project file.
"""

from __future__ import annotations

from mlpkit.config.active_learning import ActiveLearningConfig
from mlpkit.config.errors import format_validation_error
from mlpkit.config.init import init_config, load_config
from mlpkit.config.project import CONFIG_FILE, ProjectConfig, commented_yaml

__all__ = [
    "CONFIG_FILE",
    "ActiveLearningConfig",
    "ProjectConfig",
    "commented_yaml",
    "format_validation_error",
    "init_config",
    "load_config",
]
