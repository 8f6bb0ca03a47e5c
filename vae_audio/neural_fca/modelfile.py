"""Neural FCA model files (kind ``"neural-fca"``) and the checks made before separating.

A model file is a :func:`vae_audio.core.checkpoint.save_model` file whose ``config`` holds the
``model`` section (:class:`~vae_audio.neural_fca.model.NeuralFCAConfig`: ``M``, spatial
model, encoder sizes and the speech decoder's architecture) and the ``stft`` section; the
state dict holds every weight, the speech decoder's included, so loading needs no prior file.
A model takes exactly ``M`` channels (any ``M >= 2`` for a model with ``n_mics: null``,
built on the TAC encoder) and its training STFT: anything else is refused with a message
naming what the model expects.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from vae_audio.audio.stft import StftConfig
from vae_audio.core.checkpoint import load_model_file, save_model
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca.model import NeuralFCA, NeuralFCAConfig
from vae_audio.speech.model import SpeechVAE

KIND = "neural-fca"
ANY_M_METHODS = "fastmnmf2, fastmnmf, mnmf, fca"


def model_config(config: dict) -> tuple[NeuralFCAConfig, StftConfig]:
    """``(NeuralFCAConfig, StftConfig)`` from a config with ``model`` and ``stft`` sections
    (the decoder's ``n_freq`` defaults to the STFT's)."""
    stft = StftConfig.from_dict(dict(config.get("stft") or {}))
    model = dict(config.get("model") or {})
    model["decoder"] = {"n_freq": stft.n_freq, **dict(model.get("decoder") or {})}
    return NeuralFCAConfig.from_dict(model), stft


def build_neural_fca(config: dict, prior: SpeechVAE | None = None) -> NeuralFCA:
    """An untrained :class:`NeuralFCA` from a config (``prior`` supplies the decoder)."""
    cfg, stft = model_config(config)
    return NeuralFCA(cfg, stft, prior)


def load_weights(model: torch.nn.Module, state_dict: dict, mismatch: str, fix: str) -> None:
    """``model.load_state_dict(state_dict)``; weights that do not fit the model are one
    :class:`VaeAudioError`, ``"{mismatch} ({the reason}); {fix}"``."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        reason = " ".join(str(err).split())[:160]
        raise VaeAudioError(f"{mismatch} ({reason}); {fix}") from None


def save_neural_fca(path: str | os.PathLike, model: NeuralFCA, meta: dict | None = None) -> Path:
    """Write ``model`` as a standalone model file (weights, architecture, STFT)."""
    config = {"model": model.config.to_dict(), "stft": model.stft_config.to_dict()}
    return save_model(path, model.state_dict(), config, meta or {}, kind=KIND)


def load_neural_fca(
    source: str | os.PathLike | NeuralFCA,
    n_mics: int | None = None,
    stft: StftConfig | None = None,
    device=None,
) -> NeuralFCA:
    """The model in ``source`` (a file or a built model), in eval mode, checked against the
    mixture it will separate.

    Args:
        source: ``model.pt`` from ``vae-audio train neural-fca`` or a :class:`NeuralFCA`.
        n_mics: channels of the mixture (checked with :func:`check_mixture`).
        stft: the STFT the caller will use (checked against the model's).
        device: where to put the model.

    Raises:
        VaeAudioError: unreadable or foreign file, wrong ``M`` or STFT.
    """
    if isinstance(source, NeuralFCA):
        model, what = source, "the given Neural FCA model"
    else:
        data = load_model_file(source, kind=KIND)
        what = f"Neural FCA model {source}"
        try:
            model = build_neural_fca(data["config"])
            model.load_state_dict(data["state_dict"])
        except (RuntimeError, TypeError, KeyError) as err:
            reason = " ".join(str(err).split())[:160]
            raise VaeAudioError(
                f"{what} does not match its stored architecture ({reason}); re-export it with "
                "`vae-audio train neural-fca`"
            ) from None
    check_mixture(model, n_mics, stft, what)
    model.eval()
    return model.to(device) if device is not None else model


def check_mixture(
    model: NeuralFCA, n_mics: int | None, stft: StftConfig | None, what: str = "this model"
) -> None:
    """Raise :class:`VaeAudioError` unless the mixture has the model's ``M`` (any ``M >= 2``
    for a model with ``n_mics`` None) and STFT."""
    if n_mics is not None and model.n_mics is None and n_mics < 2:
        raise VaeAudioError(
            f"{what} takes any M >= 2 microphones but the mixture has M = {n_mics}; pass a "
            "multichannel mixture, or use a single-channel method (vae-nmf)"
        )
    if n_mics is not None and model.n_mics is not None and n_mics != model.n_mics:
        raise VaeAudioError(
            f"{what} was trained for M = {model.n_mics} microphones but the mixture has "
            f"M = {n_mics}; pass a {model.n_mics}-channel mixture, train a model for "
            f"M = {n_mics}, or use a method that accepts any M ({ANY_M_METHODS})"
        )
    if stft is not None:
        stft.check_compatible(model.stft_config, what)


def check_spectrogram(model: NeuralFCA, n_mics: int, n_freq: int, what: str) -> None:
    """Like :func:`check_mixture` for an STFT ``[B, M, F, T]`` whose settings are unknown:
    ``F`` must be the model's ``n_fft // 2 + 1``."""
    check_mixture(model, n_mics, None, what)
    if n_freq != model.stft_config.n_freq:
        s = model.stft_config
        raise VaeAudioError(
            f"{what} was trained with n_fft={s.n_fft}, hop_length={s.hop_length} "
            f"({s.n_freq} bins, {s.sample_rate} Hz) but the mixture STFT has {n_freq} bins; "
            f"pass stft=StftConfig(sample_rate={s.sample_rate}, n_fft={s.n_fft}, "
            f"hop_length={s.hop_length}) (the model's `stft_config`)"
        )
