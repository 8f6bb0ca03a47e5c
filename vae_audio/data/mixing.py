"""Spatialise dry sources with RIRs and set talker levels and SNR (batched, any device).

Level conventions (all measured on the reference microphone ``ref_mic``, default mic 0,
as mean power over the whole window):

* talker ``k`` is scaled so its reverberant image has ``level_db[k] - level_db[0]`` dB
  the power of talker 1's image;
* the summed speech image is then scaled to RMS ``speech_level_dbfs``;
* the summed noise image is scaled so that SNR = 10 log10(P_speech / P_noise) equals
  ``snr_db`` (P_speech: power of the summed speech image, P_noise: of the noise image);
* finally, if any sample of the mixture, an image or the noise exceeds ``peak_limit``,
  everything is scaled by one ``gain < 1`` (levels change, ratios and SNR do not).

The mixture is computed last as ``images.sum(N) + noise`` from the returned tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio.functional as AF

_EPS = 1e-20


@dataclass
class MixtureBatch:
    """``mix [B, M, S]``, ``images [B, N, M, S]``, ``noise [B, M, S]``, ``gain [B]``."""

    mix: torch.Tensor
    images: torch.Tensor
    noise: torch.Tensor
    gain: torch.Tensor


def spatialise(sources: torch.Tensor, rirs: torch.Tensor) -> torch.Tensor:
    """Convolve dry sources with their RIRs (FFT), keeping the first S samples.

    sources: ``[B, N, S]``; rirs: ``[B, N, M, L]`` (any float dtype, cast to the sources').
    Returns images ``[B, N, M, S]`` on the sources' device.
    """
    n_samples = sources.shape[-1]
    wet = AF.fftconvolve(sources.unsqueeze(2), rirs.to(sources.dtype))  # [B, N, M, S + L - 1]
    return wet[..., :n_samples]


def mix_images(
    images: torch.Tensor,
    noise: torch.Tensor | None,
    level_db: torch.Tensor,
    snr_db: torch.Tensor | None,
    speech_level_dbfs: float = -28.0,
    peak_limit: float = 0.99,
    ref_mic: int = 0,
) -> MixtureBatch:
    """Scale talker images ``[B, N, M, S]`` and the noise image ``[B, M, S]`` (or ``None``:
    no noise) by the conventions above; ``level_db [B, N]``, ``snr_db [B]`` in dB."""
    power = images[:, :, ref_mic].pow(2).mean(dim=-1)  # [B, N]
    rel = level_db.to(power) - level_db[:, :1].to(power)  # [B, N] dB relative to talker 1
    target = power[:, :1] * 10.0 ** (rel / 10.0)  # [B, N]
    scale = torch.where(power > _EPS, (target / power.clamp_min(_EPS)).sqrt(), 0.0)
    images = images * scale[:, :, None, None]
    speech_power = images.sum(dim=1)[:, ref_mic].pow(2).mean(dim=-1)  # [B]
    scale = 10.0 ** (speech_level_dbfs / 20.0) / speech_power.clamp_min(_EPS).sqrt()
    images = images * scale[:, None, None, None]
    speech_power = speech_power * scale**2
    if noise is None:
        noise = images.new_zeros(images.shape[:1] + images.shape[2:])  # [B, M, S]
    else:
        noise_power = noise[:, ref_mic].pow(2).mean(dim=-1)  # [B]
        snr = 10.0 ** (snr_db.to(noise_power) / 10.0)
        noise = noise * (speech_power / (snr * noise_power.clamp_min(_EPS))).sqrt()[:, None, None]
    peak = torch.stack(
        [
            (images.sum(dim=1) + noise).abs().amax(dim=(1, 2)),
            images.abs().amax(dim=(1, 2, 3)),
            noise.abs().amax(dim=(1, 2)),
        ]
    ).amax(dim=0)  # [B]
    gain = torch.where(peak > peak_limit, peak_limit / peak.clamp_min(_EPS), 1.0)
    images = images * gain[:, None, None, None]
    noise = noise * gain[:, None, None]
    return MixtureBatch(mix=images.sum(dim=1) + noise, images=images, noise=noise, gain=gain)
