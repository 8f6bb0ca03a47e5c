"""Loading and saving a trained speech prior (kind ``"speech-vae"``).

A speech-prior model file is a :func:`vae_audio.core.checkpoint.save_model` file whose
``config`` holds ``model`` (:class:`SpeechVAEConfig`) and ``stft`` (:class:`StftConfig`)
sections. Separators obtain their prior through :func:`load_speech_prior`, which accepts a
path, the name of a shipped model (``"speech-vae"``) or an already built model, and refuses a
prior trained with other STFT settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from vae_audio.audio.stft import StftConfig
from vae_audio.core.checkpoint import load_model_file, save_model
from vae_audio.errors import VaeAudioError
from vae_audio.speech.model import SpeechVAE, SpeechVAEConfig

KIND = "speech-vae"


def speech_vae_from_config(config: dict) -> SpeechVAE:
    """Build an untrained :class:`SpeechVAE` from a config with ``model`` and ``stft`` sections."""
    stft = StftConfig.from_dict(config.get("stft") or {})
    model_cfg = dict(config.get("model") or {})
    model_cfg.setdefault("n_freq", stft.n_freq)
    return SpeechVAE(SpeechVAEConfig.from_dict(model_cfg), stft)


def save_speech_prior(path: str | os.PathLike, model: SpeechVAE, meta: dict | None = None) -> Path:
    """Export ``model`` as a standalone speech-prior file (weights + architecture + STFT)."""
    config = {"model": model.config.to_dict(), "stft": model.stft_config.to_dict()}
    return save_model(path, model.state_dict(), config, meta or {}, kind=KIND)


def load_speech_prior(
    source: str | os.PathLike | SpeechVAE | None = None,
    stft: StftConfig | None = None,
    device=None,
) -> SpeechVAE:
    """The speech prior named by ``source``, in eval mode, optionally checked against ``stft``.

    Args:
        source: a model file, a shipped model's name (see :func:`vae_audio.pretrained`), a
            built :class:`SpeechVAE`, or None for the shipped default.
        stft: the STFT the caller will use; a mismatch raises :class:`VaeAudioError`.
        device: where to put the model.

    Raises:
        VaeAudioError: unreadable or foreign file, or STFT mismatch.
    """
    if isinstance(source, SpeechVAE):
        model, what = source, "the given speech prior"
    else:
        path = _resolve_path(source)
        data = load_model_file(path, kind=KIND)
        try:
            model = speech_vae_from_config(data["config"])
            model.load_state_dict(data["state_dict"])
        except (RuntimeError, TypeError, KeyError) as err:
            raise VaeAudioError(
                f"speech prior {path} does not match its stored architecture ({_short(err)}); "
                "re-export it with `vae-audio train speech-vae`"
            ) from None
        what = f"speech prior {path}"
    if stft is not None:
        model.check_stft(stft, what)
    model.eval()
    return model.to(device) if device is not None else model


def _resolve_path(source) -> Path:
    from vae_audio._pretrained import pretrained_path

    if source is None:
        return pretrained_path(KIND)
    text = str(source)
    if not Path(text).exists() and "/" not in text and not text.endswith(".pt"):
        return pretrained_path(text)
    return Path(text)


def _short(err: Exception) -> str:
    return " ".join(str(err).split())[:160]
