"""The speech prior as a separation source model needs it: loaded once per process
(:func:`load_prior`, a frozen copy per fit), checked against the mixture's STFT
(:func:`check_bins`, :func:`check_prior_stft`, :func:`check_made_for`), and the mixture's
power brought to the loudness the prior was trained at (:func:`prior_level`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from vae_audio.audio.stft import StftConfig, make_window
from vae_audio.errors import VaeAudioError
from vae_audio.speech.model import SpeechVAE

PRIOR_LEVEL_DBFS = -25.0  # loudness of the prior's training speech (recipes' target_dbfs)


def prior_level(power: torch.Tensor, prior: SpeechVAE) -> torch.Tensor:
    """``power [..., F, T]`` rescaled so that its mean is that of speech at
    :data:`PRIOR_LEVEL_DBFS` under the prior's STFT (``10^(dBFS/10) · Σ w²``)."""
    window = make_window(prior.stft_config, dtype=torch.float64)
    target = 10 ** (PRIOR_LEVEL_DBFS / 10) * float(window.square().sum())
    mean = power.mean((-2, -1), keepdim=True).clamp_min(torch.finfo(power.dtype).tiny)
    return power * (target / mean)


def check_bins(prior: SpeechVAE, n_freq: int, what: str = "the speech prior") -> None:
    """Refuse a spectrogram with ``n_freq`` bins that ``prior`` was not trained for."""
    if n_freq != prior.config.n_freq:
        s = prior.stft_config
        raise VaeAudioError(
            f"{what} was trained with n_fft={s.n_fft}, hop_length={s.hop_length} "
            f"({s.n_freq} bins, {s.sample_rate} Hz) but the mixture STFT has {n_freq} bins; "
            f"pass stft=StftConfig(sample_rate={s.sample_rate}, n_fft={s.n_fft}, "
            f"hop_length={s.hop_length}) (the prior's `stft_config`) or a prior trained with yours"
        )


_LOADED: dict[tuple, SpeechVAE] = {}


def _cached_prior(source: Any) -> SpeechVAE:
    """The speech prior ``source`` (None, name, path or :class:`SpeechVAE`), shared: files are
    read once per process (until they change)."""
    from vae_audio.speech.prior import load_speech_prior

    if isinstance(source, SpeechVAE):
        return source
    path = Path(str(source)) if source is not None else None
    stamp = path.stat().st_mtime_ns if path is not None and path.is_file() else None
    key = (str(source), stamp)
    if key not in _LOADED:
        if len(_LOADED) >= 4:
            _LOADED.clear()
        _LOADED[key] = load_speech_prior(source)
    return _LOADED[key]


def prior_stft(source: Any = None) -> StftConfig:
    """The STFT the speech prior ``source`` (None: the shipped one) was made for."""
    return _cached_prior(source).stft_config


def check_prior_stft(method: str, opts: dict, stft: StftConfig) -> None:
    """``MethodSpec.check_stft`` of the speech-prior methods: refuse a sample rate or STFT that
    the prior ``opts["prior"]`` (None: the shipped one) was not made for. Its spectra mean
    nothing there, and ``sr=48000`` with a 512-point STFT has the 16-kHz prior's 257 bins
    too, so :func:`check_bins` alone would not notice."""
    check_made_for(method, "a speech prior", prior_stft(opts.get("prior")), stft)


def check_made_for(method: str, what: str, theirs: StftConfig, stft: StftConfig) -> None:
    """Refuse to run ``method``, whose model (``what``, e.g. ``"a speech prior"``) was made for
    the STFT ``theirs``, on spectra of the STFT ``stft``: a one-line error that names the
    sample rate or settings to pass instead."""
    if theirs.sample_rate != stft.sample_rate:
        raise VaeAudioError(
            f"method {method!r} runs {what} made for {theirs.sample_rate} Hz but the "
            f"mixture is at sr={stft.sample_rate}; resample it to {theirs.sample_rate} Hz "
            f"(vae_audio.audio.resample) and pass sr={theirs.sample_rate}"
        )
    fields = ("n_fft", "hop_length", "win_len", "window", "center")
    diff = [f for f in fields if getattr(theirs, f) != getattr(stft, f)]
    if diff:
        made = ", ".join(f"{f}={getattr(theirs, f)}" for f in diff)
        here = ", ".join(f"{f}={getattr(stft, f)}" for f in diff)
        raise VaeAudioError(
            f"method {method!r} runs {what} made with {made} but stft= has {here}; "
            f"pass stft=StftConfig(sample_rate={theirs.sample_rate}, n_fft={theirs.n_fft}, "
            f"hop_length={theirs.hop_length}) (the model's stft_config)"
        )


def load_prior(source: Any, x: torch.Tensor) -> SpeechVAE:
    """The speech prior ``source`` (None, name, path or :class:`SpeechVAE`) as a frozen copy on
    ``x``'s device and real dtype, in eval mode (files are read once per process)."""
    base = _cached_prior(source)
    net = copy.deepcopy(base).to(device=x.device, dtype=x.real.dtype)  # 0.3 MB: cheap
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()
