"""Where the shipped model assets are, and their self-describing JSON (no heavy imports here).

The weights live inside the package (``queueemo/models``, the repository's top-level ``models/``);
``QUEUEEMO_MODEL_DIR`` points elsewhere, e.g. to evaluate freshly trained weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

from queueemo.errors import ModelError

MEL_BASIS_FILE = "mel_basis.npy"


def model_dir() -> Path:
    """The folder holding the model assets."""
    override = os.environ.get("QUEUEEMO_MODEL_DIR")
    if override:
        return Path(override)
    return Path(str(resources.files("queueemo.models")))


def asset_path(name: str, folder: Path | None = None) -> Path:
    """Path of an asset file, or a ``ModelError`` that says what to do when it is missing."""
    path = (folder or model_dir()) / name
    if not path.exists():
        raise ModelError(f"model file {name} not found in {path.parent} (reinstall queueemo, or train it)")
    return path


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (the shipped weights' JSON records theirs)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=8)
def read_info(name: str, folder: Path | None = None) -> dict:
    """The JSON that describes model ``name`` (version, audio settings, sizes, metrics)."""
    path = asset_path(f"{name}.json", folder)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is damaged: {exc}") from exc


def model_version(name: str = "clip") -> str:
    """Version of a shipped model, read from its JSON without loading the weights."""
    return str(read_info(name)["version"])
