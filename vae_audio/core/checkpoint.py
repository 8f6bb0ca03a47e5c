"""Exported model files: state dict + resolved config + metadata, loadable without code.

A model file is written by :func:`save_model` with ``torch.save`` and holds only tensors and
plain Python data, so :func:`load_model_file` reads it with ``torch.load(weights_only=True)``
(loading never runs code). Layout of the stored dict::

    {"format": "vae_audio.model", "format_version": 1, "kind": "speech-vae",
     "state_dict": {name: Tensor}, "config": {...}, "meta": {...}}

``kind`` says what the weights are for (e.g. ``"speech-vae"``, ``"neural-fca"``,
``"image-vae"``); consumers check it with :func:`check_kind`. Lightning ``.ckpt`` files are
training state for resuming, not model files.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from vae_audio.core._io import atomic_path, to_plain
from vae_audio.errors import VaeAudioError

FORMAT = "vae_audio.model"
FORMAT_VERSION = 1
_REQUIRED_KEYS = ("format", "format_version", "kind", "state_dict", "config", "meta")


def save_model(
    path: str | os.PathLike,
    model_state: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
    kind: str | None = None,
) -> Path:
    """Write a model file atomically.

    Args:
        path: destination, conventionally ``<run>/model.pt``.
        model_state: ``module.state_dict()``; tensors are detached and moved to the CPU.
        config: the resolved config the model was built from (plain data).
        meta: extra plain data (training step, metrics, data statistics, ...).
        kind: what the model is (``"speech-vae"``, ...); defaults to ``meta["kind"]``, else
            ``"model"``.

    Returns:
        ``Path(path)``.
    """
    meta = dict(meta or {})
    kind = str(kind or meta.get("kind") or "model")
    try:
        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "state_dict": {
                str(k): v.detach().cpu().clone() if isinstance(v, torch.Tensor) else to_plain(v, k)
                for k, v in model_state.items()
            },
            "config": to_plain(config, "config"),
            "meta": to_plain(meta, "meta"),
        }
    except TypeError as err:
        raise VaeAudioError(
            f"cannot export the model to {path}: {err}; store it as a tensor or plain data"
        ) from None
    buffer = io.BytesIO()  # a file path would name the archive's entries after the temp file
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return Path(path)


def load_model_file(path: str | os.PathLike, kind: str | Iterable[str] | None = None) -> dict:
    """Read a model file written by :func:`save_model` (``weights_only=True``, on the CPU).

    Args:
        path: the ``.pt`` model file.
        kind: if given, the accepted kind(s), checked with :func:`check_kind`.

    Returns:
        The dict with keys ``format, format_version, kind, state_dict, config, meta``.

    Raises:
        VaeAudioError: missing, unreadable, corrupt or foreign file, newer format, wrong kind.
    """
    path = Path(path)
    if not path.is_file():
        raise VaeAudioError(
            f"model file {path} does not exist; pass the model.pt exported by `vae-audio train`"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types for a bad file
        reason = " ".join(str(err).split())[:120] or type(err).__name__
        raise VaeAudioError(
            f"{path} cannot be read as a model file: it is corrupt, not a PyTorch file, or holds "
            f"objects that need code to load ({reason}); re-export or re-train the model"
        ) from None
    if isinstance(data, dict) and "pytorch-lightning_version" in data:
        raise VaeAudioError(
            f"{path} is a Lightning training checkpoint, not a model file; pass the model.pt "
            "exported next to it (the run folder's model.pt)"
        )
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise VaeAudioError(
            f"{path} is a PyTorch file but not a vae_audio model file; pass the model.pt "
            "exported by `vae-audio train`"
        )
    missing = [k for k in _REQUIRED_KEYS if k not in data]
    if missing:
        raise VaeAudioError(f"model file {path} lacks {missing}; re-export it with save_model")
    if int(data["format_version"]) > FORMAT_VERSION:
        raise VaeAudioError(
            f"model file {path} has format version {data['format_version']}, newer than this "
            f"vae_audio reads ({FORMAT_VERSION}); upgrade vae_audio"
        )
    if kind is not None:
        check_kind(data, kind, path)
    return data


def check_kind(
    checkpoint: Mapping[str, Any], expected: str | Iterable[str], path: str | os.PathLike = ""
) -> None:
    """Raise :class:`VaeAudioError` unless ``checkpoint["kind"]`` is (one of) ``expected``."""
    accepted = [expected] if isinstance(expected, str) else list(expected)
    actual = checkpoint.get("kind")
    if actual not in accepted:
        where = f"model file {path}" if str(path) else "the model file"
        raise VaeAudioError(
            f"{where} holds a {actual!r} model, expected {' or '.join(map(repr, accepted))}; "
            "pass a model trained by the matching recipe"
        )
