"""Spectral features of multichannel STFTs for encoders.

Inputs are complex STFTs ``[B, M, F, T]`` (any leading dims work where noted). Neural FCA
(Bando et al., IEEE SPL 2021, Sec. 3.2) feeds its encoder the log power of a reference
channel and the inter-channel phase differences (IPDs) relative to it as unit phasors;
these functions compute both without NaN on silent (all-zero) bins.
"""

from __future__ import annotations

import torch

from vae_audio.errors import VaeAudioError


def power_spectrogram(spec: torch.Tensor) -> torch.Tensor:
    """``|x|^2`` of a complex STFT ``[..., F, T]`` -> real ``[..., F, T]``."""
    return spec.real.square() + spec.imag.square()


def log_power(spec: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """``log(|x|^2 + eps)`` (natural log) of ``[B, M, F, T]`` complex -> ``[B, M, F, T]`` real."""
    return torch.log(power_spectrogram(spec) + eps)


def _unit(z: torch.Tensor, eps: float) -> torch.Tensor:
    """``z / sqrt(|z|^2 + eps^2)``: ``z / |z|`` for ``|z| >> eps``, 0 at ``z = 0``, smooth."""
    return z * torch.rsqrt(power_spectrogram(z) + eps * eps)


def ipd_phasors(spec: torch.Tensor, ref: int = 0, eps: float = 1e-8) -> torch.Tensor:
    """Inter-channel phase differences as unit phasors.

    ``[B, M, F, T]`` complex -> ``[B, M-1, F, T]`` complex with entry ``m`` (channels other
    than ``ref``, in order) equal to ``x_m x_ref^* / |x_m x_ref^*| = exp(i(∠x_m - ∠x_ref))``.
    Each channel is normalised as ``x / sqrt(|x|^2 + eps^2)`` before the product, so the
    modulus is 1 wherever ``|x_m|, |x_ref| >> eps`` and falls smoothly to 0 on silent bins
    (no NaN values or gradients). ``M = 1`` gives an empty ``[B, 0, F, T]``.
    """
    if spec.dim() != 4 or not spec.is_complex():
        raise VaeAudioError(
            f"ipd_phasors expects a complex [B, M, F, T] STFT, got {spec.dtype} "
            f"{tuple(spec.shape)}; apply STFT to a [B, M, S] waveform"
        )
    num_mics = spec.shape[1]
    if not -num_mics <= ref < num_mics:
        raise VaeAudioError(
            f"reference channel {ref} does not exist in a {num_mics}-channel STFT; "
            f"use 0 <= ref < {num_mics}"
        )
    ref = ref % num_mics
    u = _unit(spec, eps)  # [B, M, F, T]
    others = [m for m in range(num_mics) if m != ref]
    return u[:, others] * u[:, ref : ref + 1].conj()  # [B, M-1, F, T]


def ipd_features(spec: torch.Tensor, ref: int = 0, eps: float = 1e-8) -> torch.Tensor:
    """Real IPD features for convolutional encoders.

    ``[B, M, F, T]`` complex -> ``[B, 2(M-1), F, T]`` real: the cosines of the M-1 phase
    differences (channel order as in ``ipd_phasors``) followed by their sines.
    """
    phasors = ipd_phasors(spec, ref, eps)  # [B, M-1, F, T]
    return torch.cat([phasors.real, phasors.imag], dim=1)  # [B, 2(M-1), F, T]
