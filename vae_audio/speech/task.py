"""Lightning task that trains the speech VAE on clean-speech waveforms.

Batches are waveforms ``[B, S]`` (loudness-normalised per utterance by the dataset); the task
computes the STFT on the training device, so data loading stays cheap and GPU runs keep the
front end on the GPU. The loss is :func:`vae_audio.speech.objective.speech_vae_loss` (nats per
frame), with ``loss.beta`` a number or a schedule (:mod:`vae_audio.core.schedules`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vae_audio.audio.stft import STFT
from vae_audio.core.training import LossOutput, VAETask
from vae_audio.speech.objective import speech_vae_loss
from vae_audio.speech.prior import KIND, speech_vae_from_config


class SpeechVAETask(VAETask):
    """Trains a :class:`~vae_audio.speech.model.SpeechVAE` from a recipe config."""

    kind = KIND

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.model = speech_vae_from_config(self.config)
        self.stft = STFT(self.model.stft_config)

    def power(self, wav: Tensor) -> Tensor:
        """``|STFT(wav)|²``: ``[B, S] -> [B, F, T]``."""
        return self.stft(wav).abs().pow(2)

    def compute_loss(self, batch: Any, stage: str) -> LossOutput:
        wav = batch[0] if isinstance(batch, (tuple, list)) else batch  # [B, S]
        power = self.power(wav)  # [B, F, T]
        beta = self.scheduled((self.config.get("loss") or {}).get("beta", 1.0))
        loss = speech_vae_loss(power, self.model(power), beta=beta)
        logs = {"nll": loss.nll, "is_div": loss.is_div, "kl": loss.kl, "elbo": loss.elbo}
        logs["beta"] = torch.tensor(float(beta))
        return LossOutput(loss=loss.loss, logs=logs)

    def export_meta(self) -> dict[str, Any]:
        return {"stft": self.model.stft_config.to_dict(), "model": self.model.config.to_dict()}
