"""Perceptual metrics, optional: PESQ (wideband) and STOI, when their packages are installed.

Neither package is a dependency of vae_audio (``pip install pesq pystoi``, or the package's
``metrics`` extra). :func:`unavailable` says which are missing and why; the evaluation then
leaves their columns out and its report says so.

* **PESQ** (ITU-T P.862.2 wideband, via the ``pesq`` package): MOS-LQO in about
  [1.04, 4.64], higher is better. Wideband PESQ is defined at 16 kHz: other rates are
  resampled to 16 kHz first (an 8 kHz recording upsampled has no content above 4 kHz, so its
  score is not comparable with true wideband material).
* **STOI** (Taal et al., IEEE TASLP 2011, via ``pystoi``): intelligibility index in [0, 1]
  (about; the correlation can dip slightly below 0), higher is better; ``pystoi`` resamples
  to 10 kHz internally.

Both take one reference-mic pair ``[S]`` and return NaN when the library rejects the signal
(e.g. PESQ finds no utterance in silence or a too-short signal).
"""

from __future__ import annotations

import importlib

import numpy as np
import torch

from vae_audio.audio.io import resample
from vae_audio.errors import VaeAudioError

PERCEPTUAL = ("pesq", "stoi")
MODULES = {"pesq": "pesq", "stoi": "pystoi"}
PESQ_RATE = 16000


def unavailable() -> dict[str, str]:
    """``{metric: reason}`` for each perceptual metric whose package cannot be imported."""
    missing = {}
    for metric, module in MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing[metric] = (
                f"{metric.upper()} not computed: the '{module}' package is not installed; "
                f"`pip install {module}` to add the column"
            )
    return missing


def _mono(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if x.ndim != 1:
        raise VaeAudioError(f"perceptual metrics take one channel [S], got shape {tuple(x.shape)}")
    return x


def pesq_wb(ref: torch.Tensor | np.ndarray, est: torch.Tensor | np.ndarray, sr: int) -> float:
    """Wideband PESQ (MOS-LQO) of ``est`` ``[S]`` against ``ref`` ``[S]`` at ``sr`` Hz."""
    from pesq import pesq

    ref, est = _mono(ref), _mono(est)
    if sr != PESQ_RATE:
        ref, est = resample(ref, sr, PESQ_RATE), resample(est, sr, PESQ_RATE)  # [S']
    try:
        return float(pesq(PESQ_RATE, ref.numpy(), est.numpy(), "wb"))
    except Exception:  # the C library raises its own types (NoUtterancesError, ...)
        return float("nan")


def stoi(
    ref: torch.Tensor | np.ndarray,
    est: torch.Tensor | np.ndarray,
    sr: int,
    *,
    extended: bool = False,
) -> float:
    """STOI (or extended STOI) of ``est`` ``[S]`` against ``ref`` ``[S]`` at ``sr`` Hz."""
    from pystoi import stoi as _stoi

    ref, est = _mono(ref), _mono(est)
    try:
        value = float(_stoi(ref.numpy(), est.numpy(), sr, extended=extended))
    except Exception:  # pystoi raises on degenerate input
        return float("nan")
    return value if np.isfinite(value) else float("nan")
