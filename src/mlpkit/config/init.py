"""``mlpkit init``: a project file for a structure and a method, every default written out; and loading one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlpkit.config.project import CONFIG_FILE, ProjectConfig
from mlpkit.errors import InputError


def init_config(
    directory: str | Path,
    *,
    structure: str = "H2O",
    method: str = "pyscf",
    options: dict | None = None,
    name: str | None = None,
    force: bool = False,
) -> Path:
    """Write ``directory/mlpkit.yaml`` for ``structure`` and ``method`` with every default written out."""
    directory = Path(directory)
    target = directory / CONFIG_FILE
    if target.exists() and not force:
        raise InputError(f"{target} exists; pass --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "project": {"name": name or directory.resolve().name},
        "system": {"structure": structure},
        "reference": {"method": method, "options": dict(options or {})},
    }
    # a structure file given relative to the current directory must still be found from the config's directory
    spath = Path(structure).expanduser()
    if spath.exists():
        data["system"]["structure"] = str(spath.resolve())
    cfg = ProjectConfig.from_dict(data, base_dir=directory.resolve(), where=f"mlpkit init {directory}")
    header = (
        f"mlpkit project: {cfg.project.name}\n"
        f"Run it with: mlpkit run {target}\n"
        "Every key is shown with its default; delete what you do not change, or edit in place.\n"
        "Units: eV, Å, fs, K (ASE's). Full guide: docs/user-guide.md"
    )
    return cfg.write_yaml(target, header=header)


def load_config(path: str | Path) -> ProjectConfig:
    """Shorthand for :meth:`ProjectConfig.from_yaml`."""
    return ProjectConfig.from_yaml(path)
