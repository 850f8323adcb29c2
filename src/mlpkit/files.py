"""Atomic file writes and JSON conversion: a killed process leaves the old file or the new one, never half."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays, tuples and paths turned into plain JSON types (recursively)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temporary sibling, fsync, and rename over ``path`` (readable like a normal file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(tmp, _umask_mode())
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(jsonable(data), indent=2, allow_nan=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def atomic_write_images(path: str | os.PathLike, images: Sequence[Atoms]) -> None:
    """Write configurations to extxyz atomically (an empty list writes an empty file)."""
    from ase.io import write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".extxyz", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _umask_mode())
    try:
        if images:
            write(tmp, list(images), format="extxyz")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_images(path: str | os.PathLike) -> list[Atoms]:
    """The configurations of an extxyz file (an empty or missing file: none)."""
    from ase.io import read

    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    return list(read(path, index=":", format="extxyz"))
