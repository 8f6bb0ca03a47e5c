"""Multichannel encoder of Neural FCA: ``x [B, M, F, T]`` -> ``q(z_nt)`` for N slots.

Features (Bando et al., IEEE SPL 2021, Sec. 3.2): the log power of mic 0 (batch-normalised per
frequency) and the inter-channel phase differences to mic 0 as unit phasors (cos, sin), i.e.
``(2M − 1) F`` channels per frame. A 1×1 convolution maps them to ``io_channels``, then
``n_blocks`` stacks of ``n_layers`` residual dilated depthwise-separable 1-D convolutions
(dilation ``2^l``, Conv-TasNet style, as the published training code) and a 1×1 head give,
for every slot ``n`` and frame ``t``, the mean and standard deviation (softplus) of
``q(z_nt) = N(μ, diag σ²)`` and optionally a log-gain ``log a_nt`` (zero-initialised) and a
per-slot frequency response ``log u_nf`` read from the time-averaged features
(zero-initialised; the ``u_nf`` of VAE-FastFCA's ``u_nf v_nt g_f(z_nt)``).

Receptive field: ``1 + 2 (k − 1)/2 · Σ_l 2^l`` frames per stack, summed over stacks
(published: ``k = 3``, 4 stacks of 8 layers: ±1020 frames).

``EncoderConfig.kind`` chooses between this fixed-``M`` encoder (``"conv"``, and its Neural
FastFCA variant :mod:`~vae_audio.neural_fca.jd_encoder`) and the encoder for any number of
microphones, equivariant to their order (``"tac"``, :mod:`~vae_audio.neural_fca.tac_encoder`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as fn

from vae_audio.audio.features import ipd_features, log_power
from vae_audio.core.distributions import DiagonalGaussian
from vae_audio.core.precision import as_float32, full_precision
from vae_audio.errors import VaeAudioError

ENCODER_KINDS = ("conv", "tac")


@dataclass(frozen=True)
class EncoderConfig:
    """Size of the dilated-convolution encoder.

    Defaults are the published architecture (io 256, mid 512, 4 stacks x 8 layers, kernel 3);
    the CPU recipe uses e.g. io 64, mid 128, 2 x 4. ``kind``: ``"conv"`` (the published
    encoder: one input layer for a fixed ``M``) or ``"tac"`` (shared per-microphone layers
    mixed by transform-average-concatenate, any ``M >= 2``; Neural FastFCA only).
    """

    io_channels: int = 256
    mid_channels: int = 512
    n_blocks: int = 4
    n_layers: int = 8
    kernel_size: int = 3
    kind: str = "conv"

    def __post_init__(self) -> None:
        if self.kind not in ENCODER_KINDS:
            raise VaeAudioError(
                f"model.encoder.kind={self.kind!r}; use one of {', '.join(ENCODER_KINDS)}"
            )
        for name in ("io_channels", "mid_channels", "n_blocks", "n_layers", "kernel_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise VaeAudioError(
                    f"model.encoder.{name} must be a positive integer, got {value!r}"
                )
        if self.kernel_size % 2 == 0:
            raise VaeAudioError(f"model.encoder.kernel_size must be odd, got {self.kernel_size}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EncoderConfig:
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise VaeAudioError(
                f"unknown model.encoder key(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**d)


@dataclass
class EncoderOutput:
    """``posterior`` over ``z [B, N, T, D]``; ``log_gain [B, N, T]`` or None;
    ``log_freq_gain [B, N, F]`` or None."""

    posterior: DiagonalGaussian
    log_gain: Tensor | None
    log_freq_gain: Tensor | None = None


class InputFeatures(nn.Module):
    """``x [B, M, F, T]`` complex -> ``[B, (2M − 1) F, T]`` real (module docstring)."""

    def __init__(self, n_freq: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(n_freq)

    def forward(self, x: Tensor) -> Tensor:
        B, M, F, T = x.shape
        logx = self.norm(log_power(x[:, 0:1], eps=1e-6)[:, 0])  # [B, F, T]
        ipd = ipd_features(x, ref=0).reshape(B, 2 * (M - 1) * F, T)  # [B, 2(M-1)F, T]
        return torch.cat([logx, ipd], dim=1)  # [B, (2M-1)F, T]


class DepthwiseSeparableConv1d(nn.Module):
    """Residual block ``h + W_out σ(dwconv_d(σ(W_in h)))`` with PReLU and GroupNorm."""

    def __init__(self, io_ch: int, mid_ch: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        pad = (kernel_size - 1) // 2 * dilation
        self.net = nn.Sequential(
            nn.Conv1d(io_ch, mid_ch, 1),
            nn.PReLU(),
            nn.GroupNorm(1, mid_ch),
            nn.Conv1d(mid_ch, mid_ch, kernel_size, padding=pad, dilation=dilation, groups=mid_ch),
            nn.PReLU(),
            nn.GroupNorm(1, mid_ch),
            nn.Conv1d(mid_ch, io_ch, 1),
        )

    def forward(self, h: Tensor) -> Tensor:
        return h + self.net(h)  # [B, C, T]


def dilated_stack(cfg: EncoderConfig) -> nn.Sequential:
    """One stack of ``n_layers`` blocks with dilations ``1, 2, 4, ...``."""
    return nn.Sequential(
        *[
            DepthwiseSeparableConv1d(cfg.io_channels, cfg.mid_channels, cfg.kernel_size, 2**i)
            for i in range(cfg.n_layers)
        ]
    )


_GATE_CHANNELS = 384  # gate channels per block of gated_time_mean


def gated_time_mean(head: nn.Conv1d, h: Tensor, xt: Tensor) -> Tensor:
    """``mean_t sigmoid(head(h))_knt · xt_kt``: the JD encoders' spatial gains before their
    normalisation.

    ``h [B, C, T]``; ``head`` a 1×1 convolution with ``K·N`` output channels (``k`` major);
    ``xt [B, K, T]`` -> ``[B, K, N]`` in float32 (the head's convolution under autocast as
    ``head(h)``, the rest in full precision). The gates are computed for a block of rows of
    ``K`` at a time (about :data:`_GATE_CHANNELS` output channels), so that the
    ``[B, K·N, T]`` gate tensor never exists at once: the same numbers, 2.5x faster on a CPU
    for a 10-s 4-mic input (a block stays in cache), and less memory. The blocks depend on
    ``K`` and ``N`` alone (the model's), so that a traced graph serves any ``B`` and ``T``.
    """
    B, K, T = xt.shape
    N = head.out_channels // K
    step = max(1, _GATE_CHANNELS // N)  # rows of K per block
    parts = []
    for k0 in range(0, K, step):
        k1 = min(k0 + step, K)
        bias = None if head.bias is None else head.bias[k0 * N : k1 * N]
        w = as_float32(fn.conv1d(h, head.weight[k0 * N : k1 * N], bias))  # [B, k·N, T]
        with full_precision(h.device):  # a matmul: autocast would take it to bfloat16
            gates = torch.sigmoid(w).unflatten(1, (k1 - k0, N))  # [B, k, N, T]
            parts.append((gates @ xt[:, k0:k1, :, None])[..., 0])  # [B, k, N]
    return torch.cat(parts, 1) / T  # [B, K, N]


class LatentHead(nn.Module):
    """``h [B, C, T]`` -> :class:`EncoderOutput` for ``n_src`` slots of ``latent_dim``."""

    def __init__(
        self, channels: int, n_src: int, latent_dim: int, gain: bool, freq_gain_bins: int = 0
    ) -> None:
        super().__init__()
        self.n_src, self.latent_dim, self.n_freq = n_src, latent_dim, freq_gain_bins
        self.z = nn.Conv1d(channels, 2 * n_src * latent_dim, 1)
        self.gain = nn.Conv1d(channels, n_src, 1) if gain else None
        self.freq_gain = nn.Linear(channels, n_src * freq_gain_bins) if freq_gain_bins else None
        for layer in (self.gain, self.freq_gain):  # start from unit gains
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, h: Tensor) -> EncoderOutput:
        """``h [B, C, T]`` -> :class:`EncoderOutput`, float32 also under autocast
        (:mod:`vae_audio.core.precision`)."""
        B, _, T = h.shape
        out = as_float32(self.z(h)).reshape(B, self.n_src, 2, self.latent_dim, T)  # [B, N, 2, D, T]
        mean, s = out.permute(2, 0, 1, 4, 3)  # 2 x [B, N, T, D]
        logvar = 2 * torch.log(fn.softplus(s) + 1e-6)
        log_gain = None if self.gain is None else as_float32(self.gain(h))  # [B, N, T]
        log_u = None
        if self.freq_gain is not None:
            log_u = as_float32(self.freq_gain(h.mean(-1)))  # [B, N·F]
            log_u = log_u.reshape(B, self.n_src, self.n_freq)  # [B, N, F]
        return EncoderOutput(DiagonalGaussian(mean, logvar), log_gain, log_u)


class NeuralFCAEncoder(nn.Module):
    """Published Neural FCA encoder: features -> dilated stacks -> :class:`LatentHead`.

    Args:
        cfg: sizes.
        n_mics: ``M`` (fixes the input width).
        n_freq: ``F``.
        n_src: ``N`` slots.
        latent_dim: ``D``.
        gain: also predict a per-slot, per-frame log-gain.
        freq_gain: also predict a per-slot frequency response ``log u_nf``.
    """

    def __init__(
        self,
        cfg: EncoderConfig,
        n_mics: int,
        n_freq: int,
        n_src: int,
        latent_dim: int,
        gain: bool,
        freq_gain: bool = False,
    ) -> None:
        super().__init__()
        self.features = InputFeatures(n_freq)
        self.inp = nn.Conv1d((2 * n_mics - 1) * n_freq, cfg.io_channels, 1)
        self.blocks = nn.Sequential(*[dilated_stack(cfg) for _ in range(cfg.n_blocks)])
        self.head = LatentHead(cfg.io_channels, n_src, latent_dim, gain, n_freq * freq_gain)

    def forward(self, x: Tensor) -> EncoderOutput:
        """``x [B, M, F, T]`` complex (power-normalised) -> :class:`EncoderOutput`."""
        return self.head(self.blocks(self.inp(self.features(x))))
