"""Audio file I/O (soundfile) and resampling (torchaudio).

Waveforms are ``[M, S]`` float32 tensors (M channels, S samples; mono is ``[1, S]``).
Every expected failure (missing file, not audio, empty, non-finite samples, unwritable
output, writing onto an input) raises ``VaeAudioError`` naming the file and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write, check_not_protected

PathLike = str | os.PathLike

_FLOAT_SUBTYPES = {"FLOAT", "DOUBLE", "VORBIS", "OPUS", "MPEG_LAYER_III"}


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file: rate in Hz, channel count, frames present, duration in
    seconds, and ``missing_frames``: how many frames a truncated WAV's header declares beyond
    the data the file holds (0 when complete; see :func:`wav_missing_frames`)."""

    sample_rate: int
    channels: int
    frames: int
    duration: float
    missing_frames: int = 0

    @property
    def missing_seconds(self) -> float:
        return self.missing_frames / self.sample_rate


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise VaeAudioError(f"audio file '{path}' does not exist; check the path")
    if path.is_dir():
        raise VaeAudioError(f"'{path}' is a folder, not an audio file; give the path of a file")


def _not_audio(path: Path, exc: Exception) -> VaeAudioError:
    return VaeAudioError(
        f"'{path}' is not a readable audio file ({exc}); give a WAV/FLAC/OGG file "
        "(any format soundfile reads), or convert it first, e.g. with `ffmpeg -i IN out.wav`"
    )


def _check_rate(sr: int, what: str) -> int:
    ok = isinstance(sr, (int, float, np.integer)) and not isinstance(sr, bool)
    if not ok or sr <= 0 or int(sr) != sr:
        raise VaeAudioError(f"{what} must be a positive integer in Hz, got {sr!r}")
    return int(sr)


def audio_info(path: PathLike) -> AudioInfo:
    """Read the header of ``path`` without loading samples."""
    path = Path(path).expanduser()
    _check_exists(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise _not_audio(path, exc) from exc
    if info.frames <= 0:
        raise VaeAudioError(f"audio file '{path}' has zero length; re-export or remove it")
    return AudioInfo(
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        duration=info.frames / info.samplerate,
        missing_frames=wav_missing_frames(path, int(info.frames)) if info.format == "WAV" else 0,
    )


def wav_missing_frames(path: Path, frames: int) -> int:
    """Frames that the ``data`` chunk size in the RIFF header of the WAV file ``path``
    declares beyond the ``frames`` that libsndfile found in the file (0 if none, or if the
    header leaves the size open, as streaming writers do with 0 or 0xFFFFFFFF).

    libsndfile reads a truncated WAV (e.g. a copy or recording cut short) without a word, so
    this compares the header with what is there.
    """
    try:
        with open(path, "rb") as fh:
            riff = fh.read(12)
            if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
                return 0  # RF64/W64/AIFF-in-WAV: leave to libsndfile
            block_align = 0
            while True:
                head = fh.read(8)
                if len(head) < 8:
                    return 0
                chunk_id, size = head[:4], int.from_bytes(head[4:], "little")
                if chunk_id == b"fmt ":
                    fmt = fh.read(size)
                    block_align = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else 0
                    fh.seek(size % 2, os.SEEK_CUR)
                elif chunk_id == b"data":
                    if block_align <= 0 or size in (0, 0xFFFFFFFF):
                        return 0
                    return max(size // block_align - frames, 0)
                else:
                    fh.seek(size + size % 2, os.SEEK_CUR)
    except OSError:
        return 0


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Resample ``[..., S]`` from ``orig_sr`` to ``new_sr`` Hz (windowed-sinc, torchaudio).

    Returns ``[..., S']`` with ``S' = ceil(S * new_sr / orig_sr)``, on ``wav``'s device.
    """
    orig_sr = _check_rate(orig_sr, "the original sample rate")
    new_sr = _check_rate(new_sr, "the target sample rate")
    if orig_sr == new_sr:
        return wav
    return AF.resample(wav, orig_sr, new_sr)


def load_audio(path: PathLike, sr: int | None = None) -> tuple[torch.Tensor, int]:
    """Read ``path`` into a ``[M, S]`` float32 tensor; resample to ``sr`` Hz if given.

    Returns ``(wav, rate)`` where ``rate`` is ``sr`` if given, else the file's rate.
    """
    path = Path(path).expanduser()
    _check_exists(path)
    if sr is not None:
        sr = _check_rate(sr, f"the sample rate requested for '{path}'")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)  # [S, M]
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise _not_audio(path, exc) from exc
    if data.shape[0] == 0:
        raise VaeAudioError(f"audio file '{path}' has zero length; re-export or remove it")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise VaeAudioError(
            f"audio file '{path}' contains {bad} NaN/Inf samples; "
            "re-export it or fix the program that wrote it"
        )
    wav = torch.from_numpy(np.ascontiguousarray(data.T))  # [M, S]
    if sr is not None and sr != file_sr:
        wav = resample(wav, int(file_sr), sr)
        return wav, sr
    return wav, int(file_sr)


def _to_numpy_channels_last(wav: torch.Tensor | np.ndarray, path: Path) -> np.ndarray:
    """``[M, S]`` or ``[S]`` tensor/array -> ``[S, M]`` float32 numpy array."""
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().to("cpu", torch.float32).numpy()
    data = np.asarray(wav, dtype=np.float32)
    if data.ndim == 1:
        data = data[None, :]  # [1, S]
    if data.ndim != 2:
        raise VaeAudioError(
            f"cannot save '{path}': waveform must be [M, S] or [S], got shape "
            f"{tuple(data.shape)}; select one item of the batch first"
        )
    if data.shape[1] == 0:
        raise VaeAudioError(f"cannot save '{path}': waveform has zero samples")
    if not np.isfinite(data).all():
        raise VaeAudioError(
            f"cannot save '{path}': waveform contains NaN/Inf samples; "
            "the computation that produced it diverged"
        )
    return np.ascontiguousarray(data.T)  # [S, M]


def save_audio(
    path: PathLike,
    wav: torch.Tensor | np.ndarray,
    sr: int,
    *,
    protect: Iterable[PathLike] = (),
    subtype: str = "FLOAT",
) -> Path:
    """Write ``wav`` (``[M, S]`` or ``[S]``) to ``path`` atomically; return the path.

    The container comes from the extension (``.wav``, ``.flac``, ...), the sample encoding
    from ``subtype`` (float32 by default, so values outside [-1, 1] survive). Refuses to
    write onto any path in ``protect`` and refuses integer subtypes for data that would clip.
    """
    path = Path(path).expanduser()
    protect = list(protect)
    check_not_protected(path, protect)
    sr = _check_rate(sr, f"the sample rate for '{path}'")
    fmt = path.suffix.lstrip(".").upper()
    if fmt not in sf.available_formats():
        raise VaeAudioError(
            f"cannot save '{path}': unknown audio extension '{path.suffix}'; "
            "use .wav, .flac or another extension soundfile knows"
        )
    subtype = subtype.upper()
    if not sf.check_format(fmt, subtype):
        raise VaeAudioError(
            f"cannot save '{path}': format {fmt} does not support subtype {subtype}; "
            f"use one of {sorted(sf.available_subtypes(fmt))}"
        )
    data = _to_numpy_channels_last(wav, path)  # [S, M]
    peak = float(np.abs(data).max())
    if subtype not in _FLOAT_SUBTYPES and peak > 1.0:
        raise VaeAudioError(
            f"cannot save '{path}' as {subtype}: peak amplitude {peak:.3g} > 1 would clip; "
            "scale the signal or save with subtype='FLOAT'"
        )
    with atomic_write(path, protect=protect) as tmp:
        sf.write(str(tmp), data, sr, subtype=subtype, format=fmt)
    return path
