"""Signal levels: RMS in dBFS, loudness normalisation and energy-based silence trimming.

dBFS here is ``20 log10(rms)`` for a float signal whose full scale is 1.0 (a full-scale
square wave is 0 dBFS, a full-scale sine -3 dBFS). Functions take the input's device/dtype.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch

_EPS = 1e-12


def rms_dbfs(wav: torch.Tensor) -> torch.Tensor:
    """RMS level in dBFS over the last axis: ``[..., S] -> [...]``."""
    power = wav.pow(2).mean(dim=-1)
    return 10.0 * torch.log10(power.clamp_min(_EPS))


def normalise_rms(wav: torch.Tensor, target_dbfs: float, peak_limit: float = 0.99):
    """Scale ``[..., S]`` so the RMS over its last axis is ``target_dbfs``.

    If the result would peak above ``peak_limit`` it is scaled down further so that its
    peak is exactly ``peak_limit`` (then the RMS is below target). Silent inputs (RMS
    below -120 dBFS) are returned unchanged. Returns the scaled ``[..., S]``.
    """
    power = wav.pow(2).mean(dim=-1, keepdim=True)  # [..., 1]
    gain = torch.where(
        power > _EPS, (10.0 ** (target_dbfs / 20.0)) / power.clamp_min(_EPS).sqrt(), 1.0
    )
    peak = wav.abs().amax(dim=-1, keepdim=True) * gain  # [..., 1]
    gain = torch.where(peak > peak_limit, gain * peak_limit / peak.clamp_min(_EPS), gain)
    return wav * gain


def trim_silence(
    wav: np.ndarray, sr: int, top_db: float = 40.0, margin_s: float = 0.05
) -> np.ndarray:
    """Cut leading/trailing silence from a mono ``[S]`` signal, keeping ``margin_s`` of it.

    Silence is every 32-ms frame (8-ms hop) whose RMS is more than ``top_db`` below the
    loudest frame (``librosa.effects.trim``). An all-silent input comes back empty.
    """
    if not np.any(wav):
        return wav[:0]
    frame = max(16, int(round(0.032 * sr)))
    hop = max(4, frame // 4)
    _, (start, stop) = librosa.effects.trim(wav, top_db=top_db, frame_length=frame, hop_length=hop)
    margin = int(round(margin_s * sr))
    return wav[max(0, start - margin) : min(len(wav), stop + margin)]
