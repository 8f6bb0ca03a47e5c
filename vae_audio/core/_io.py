"""Atomic file writing and plain-data conversion shared by config and checkpoint I/O."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from vae_audio.fileio import atomic_write


def atomic_path(path: str | os.PathLike):
    """Temporary path next to ``path`` that replaces it on success (:func:`atomic_write`)."""
    return atomic_write(path)


def to_plain(value: Any, where: str = "value") -> Any:
    """Convert nested config/meta data to YAML- and ``weights_only``-safe built-ins.

    Mappings become dicts with string keys, tuples become lists, paths become strings and
    NumPy scalars become Python numbers. Anything else raises ``TypeError`` naming ``where``.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # NumPy / torch scalar
        return value.item()
    raise TypeError(f"{where} has type {type(value).__name__}, which cannot be saved as plain data")
