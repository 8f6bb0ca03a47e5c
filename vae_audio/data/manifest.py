"""JSON Lines manifests: one JSON object per line, one line per utterance or mixture.

Path-valued keys (``path``, ``mix``, ``sources``, ``noise``, ``meta``) are stored relative to
the manifest's folder when the file lies inside that folder, and absolute otherwise, so a
corpus folder can be moved or copied as a whole while a manifest of an external corpus (e.g.
LibriSpeech scanned in place) keeps working. :func:`read_manifest` returns them absolute.

Speech corpus lines carry at least ``path``, ``duration`` (seconds) and ``speaker``; the
scanner and TTS builder add ``text``, ``split``, ``sample_rate`` and the corpus/engine name.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write_text

PathLike = str | os.PathLike

PATH_KEYS = ("path", "mix", "sources", "noise", "meta")


def _relativise(value, root: Path):
    if isinstance(value, list):
        return [_relativise(v, root) for v in value]
    p = Path(value)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.resolve().relative_to(root).as_posix()
    except ValueError:  # outside the manifest's folder
        return str(p)


def _absolutise(value, root: Path):
    if isinstance(value, list):
        return [_absolutise(v, root) for v in value]
    p = Path(value)
    return str(p if p.is_absolute() else root / p)


def write_manifest(
    path: PathLike, entries: Iterable[dict], *, protect: Iterable[PathLike] = ()
) -> Path:
    """Write ``entries`` (dicts; path keys absolute or relative to the CWD) atomically."""
    path = Path(path).expanduser()
    root = path.parent.resolve()
    lines = []
    for entry in entries:
        out = dict(entry)
        for key in PATH_KEYS:
            if key in out:
                out[key] = _relativise(
                    [str(Path(v).resolve()) for v in out[key]]
                    if isinstance(out[key], list)
                    else str(Path(out[key]).resolve()),
                    root,
                )
        lines.append(json.dumps(out, ensure_ascii=False))
    atomic_write_text(path, "".join(line + "\n" for line in lines), protect=protect)
    return path


def read_manifest(
    path: PathLike, *, require: Sequence[str] = ("path",), split: str | None = None
) -> list[dict]:
    """Read a manifest; return its entries with path keys made absolute.

    ``require`` lists keys every line must have; ``split`` keeps only lines whose ``split``
    equals it (lines without a ``split`` key count as ``train``).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise VaeAudioError(
            f"manifest '{path}' does not exist; build one with `vae-audio corpus tts`, "
            "`vae-audio corpus scan` or `vae-audio simulate`"
        )
    root = path.parent.resolve()
    entries = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise VaeAudioError(
                    f"manifest '{path}' line {lineno} is not valid JSON ({exc.msg}); "
                    "fix or regenerate the manifest"
                ) from exc
            if not isinstance(entry, dict):
                raise VaeAudioError(
                    f"manifest '{path}' line {lineno} is not a JSON object; regenerate it"
                )
            missing = [k for k in require if k not in entry]
            if missing:
                raise VaeAudioError(
                    f"manifest '{path}' line {lineno} lacks key(s) {missing}; is this the "
                    "right kind of manifest (speech corpus vs simulated mixtures)?"
                )
            if split is not None and entry.get("split", "train") != split:
                continue
            for key in PATH_KEYS:
                if key in entry:
                    entry[key] = _absolutise(entry[key], root)
            entries.append(entry)
    if not entries:
        which = f" with split '{split}'" if split is not None else ""
        raise VaeAudioError(
            f"manifest '{path}' has no entries{which}; check the manifest and the split name"
        )
    return entries


def file_digest(path: PathLike) -> str:
    """SHA-256 hex digest of a file's bytes (used to tie outputs to the manifest they used)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
