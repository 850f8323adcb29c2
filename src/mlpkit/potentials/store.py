"""The model directory: how every potential is written and read back, safely.

``model.json``    family, hyperparameters, species, cutoff, metadata (method of the training data,
                  training-set hash, metrics, package version)
``weights.pt``    tensors only, read back with ``torch.load(weights_only=True)`` passed explicitly (importing mace
                  makes the default unsafe for the whole process), never arbitrary pickle
``members/NN``    sub-potentials, for potentials made of potentials (committees)

A directory is written to a temporary sibling and renamed into place: a crash leaves the old model or the new one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlpkit.errors import InputError
from mlpkit.files import jsonable

if TYPE_CHECKING:
    from mlpkit.potentials.base import Potential

MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.pt"


def read_model_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    file = path / MODEL_FILE
    if not file.exists():
        raise InputError(f"{path} is not a saved mlpkit model (no {MODEL_FILE})")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{file} is corrupt: {exc}") from exc


def read_family_json(path: str | os.PathLike, family: str) -> dict:
    """``model.json`` of a directory that must hold a ``family`` model (a clear error otherwise)."""
    meta = read_model_json(path)
    if meta.get("family") != family:
        raise InputError(f"{path} holds a {meta.get('family')!r} model, not {family!r}")
    return meta


def write_model_dir(
    path: str | os.PathLike,
    model_json: dict,
    tensors: dict | None = None,
    members: Sequence[Potential] = (),
) -> None:
    """Write ``model.json`` (+ ``weights.pt`` of plain tensors, + ``members/i``) atomically.

    Everything goes to a temporary sibling directory first, which then replaces ``path``: a crash leaves
    either the old model or the new one, never a mix.
    """
    import torch

    from mlpkit.version import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        model_json = {"mlpkit_version": __version__, **model_json}
        (tmp / MODEL_FILE).write_text(json.dumps(jsonable(model_json), indent=2, sort_keys=True))
        if tensors is not None:
            torch.save(tensors, tmp / WEIGHTS_FILE)
        for i, member in enumerate(members):
            member.save(tmp / "members" / f"{i:02d}")
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def read_weights(path: str | os.PathLike, file: str = WEIGHTS_FILE) -> dict:
    """The tensors of a model directory, through ``torch.load(weights_only=True)``: plain tensors and numbers only."""
    import torch

    return torch.load(Path(path) / file, map_location="cpu", weights_only=True)


def is_model_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / MODEL_FILE).is_file()
