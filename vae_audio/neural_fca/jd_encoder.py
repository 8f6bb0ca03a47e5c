"""Encoder of Neural FastFCA: dilated-conv stacks interleaved with ISS updates of ``Q_f``.

Neural FastFCA (Bando et al., EUSIPCO 2023, Sec. 3) replaces the full-rank SCMs by a jointly
diagonalisable model ``Y_ft = Q_f⁻¹ diag(ŷ_ft) Q_f⁻ᴴ``, ``ŷ_fmt = Σ_n g_nfm λ_nft``. The
network estimates the diagonalisers itself: starting from ``Q_f = I``, after every stack but
the last a 1×1 head predicts weights ``r_fmt ∈ (0, 1)`` (the role of ``1/ŷ_fmt``), one or
more ISS sweeps (:mod:`vae_audio.neural_fca.iss`) update ``Q_f`` with
``V_fm = (1/T) Σ_t r_fmt x xᴴ``, ``Q`` is rescaled so that ``x̃ = |Q x|²`` has mean 1, and
``log x̃`` is fed back into the next stack. After the last stack the heads give ``q(z_nt)``,
the optional log-gains and the spatial gains

    g_nfm = mean_t(w_nfmt x̃_fmt) / mean_m(...),   w = sigmoid(head(h)),

normalised to mean 1 over the channels (as the published code). No matrix inverse is taken
inside the network, which is what makes a training step much cheaper than Neural FCA's EM.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vae_audio.core.distributions import DiagonalGaussian
from vae_audio.core.precision import as_float32, full_precision
from vae_audio.neural_fca.encoder import (
    EncoderConfig,
    InputFeatures,
    LatentHead,
    dilated_stack,
    gated_time_mean,
)
from vae_audio.neural_fca.iss import iss_sweep, normalise_scale, weighted_covariance
from vae_audio.separation.linalg import outer_hermitian, stack_real


@dataclass
class JDEncoderOutput:
    """``posterior`` over ``z [B, N, T, D]``, ``log_gain [B, N, T]`` and
    ``log_freq_gain [B, N, F]`` or None (:class:`~.encoder.EncoderOutput`), diagonalisers
    ``Q [B, F, M, M]``, decorrelated powers ``xt [B, F, M, T]`` (``|Q x|²``, mean 1) and
    spatial gains ``g [B, N, F, M]`` (mean 1 over M)."""

    posterior: DiagonalGaussian
    log_gain: Tensor | None
    Q: Tensor
    xt: Tensor
    g: Tensor
    log_freq_gain: Tensor | None = None


class NeuralFastFCAEncoder(nn.Module):
    """See the module docstring. ``iss_sweeps`` sweeps per ISS step, ``iss_load`` the
    diagonal loading of ``V`` (power units of the normalised mixture)."""

    def __init__(
        self,
        cfg: EncoderConfig,
        n_mics: int,
        n_freq: int,
        n_src: int,
        latent_dim: int,
        gain: bool,
        iss_sweeps: int = 1,
        iss_load: float = 1e-4,
        freq_gain: bool = False,
    ) -> None:
        super().__init__()
        self.n_src, self.iss_sweeps, self.iss_load = n_src, iss_sweeps, iss_load
        io, fm = cfg.io_channels, n_freq * n_mics
        self.features = InputFeatures(n_freq)
        self.inp = nn.Conv1d((2 * n_mics - 1) * n_freq, io, 1)
        self.blocks = nn.ModuleList([dilated_stack(cfg) for _ in range(cfg.n_blocks)])
        self.weights = nn.ModuleList([nn.Conv1d(io, fm, 1) for _ in range(cfg.n_blocks - 1)])
        self.xt_in = nn.Conv1d(fm, io, 1, bias=False)
        self.head = LatentHead(io, n_src, latent_dim, gain, n_freq * freq_gain)
        self.g_head = nn.Conv1d(io, fm * n_src, 1)

    def forward(self, x: Tensor) -> JDEncoderOutput:
        """``x [B, M, F, T]`` complex (power-normalised) -> :class:`JDEncoderOutput`."""
        B, M, F, T = x.shape
        xf = x.transpose(1, 2)  # [B, F, M, T]
        eye = torch.eye(M, dtype=x.dtype, device=x.device)
        xr = stack_real(xf)  # [B, F, 2M, T], shared by the rescalings
        Q, xt = normalise_scale(xf, eye.expand(B, F, M, M), xr)
        h = self.blocks[0](self.inp(self.features(x)))  # [B, C, T]
        xx = outer_hermitian(xf)  # [B, F, T, M²], shared by the ISS steps
        for block, weight_head in zip(self.blocks[1:], self.weights, strict=True):
            r = as_float32(weight_head(h)).reshape(B, F, M, T)  # [B, F, M, T]
            with full_precision(x.device):  # ISS statistics in float32 under autocast
                V = weighted_covariance(xf, torch.sigmoid(r), self.iss_load, xx)  # [B, F, M, M, M]
                for _ in range(self.iss_sweeps):
                    Q = iss_sweep(Q, V)
                Q, xt = normalise_scale(xf, Q, xr)
                logxt = xt.clamp_min(1e-6).log().reshape(B, F * M, T)
            h = block(h + self.xt_in(logxt))  # [B, C, T]
        enc = self.head(h)
        g = gated_time_mean(self.g_head, h, xt.flatten(1, 2)).unflatten(1, (F, M))  # [B, F, M, N]
        g = g / g.mean(2, keepdim=True).clamp_min(1e-6)
        g = g.permute(0, 3, 1, 2)  # [B, N, F, M]
        return JDEncoderOutput(enc.posterior, enc.log_gain, Q, xt, g, enc.log_freq_gain)
