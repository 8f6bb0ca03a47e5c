"""Neural FastFCA encoder for any number of microphones, equivariant to their order.

The encoder of :mod:`~vae_audio.neural_fca.jd_encoder` reads all ``M`` channels through one
1×1 convolution and writes ``F·M`` weights and gains, so its weights fix ``M`` and the
order of the microphones. Here every layer acts on each microphone with weights shared by all
of them, and the channels exchange information only through transform-average-concatenate
(TAC, Luo et al., "End-to-end microphone permutation and number invariant multi-channel
speech separation", ICASSP 2020, Sec. 2.2), so one model serves any ``M >= 2``:

* features of mic ``m`` (``3F`` per frame): its log power ``log(|x_mft|² + 10⁻⁶)``,
  batch-normalised per frequency, and the real and imaginary parts of
  ``p_mft = u_mft · conj(mean_{m' ≠ m} u_m'ft)``, ``u ≈ x / |x|``: the mean over the other
  microphones of the inter-channel phase differences as unit phasors, whose modulus is a
  coherence (1 when all channels are in phase, near 0 for diffuse sound). Permuting the
  microphones permutes these features and changes nothing else;
* a shared 1×1 convolution to ``C = io_channels`` per mic, ``h [B, M, C, T]``;
* ``n_blocks`` dilated stacks (:func:`~vae_audio.neural_fca.encoder.dilated_stack`) applied
  to every mic with shared weights (``M`` folded into the batch), each followed by a
  :class:`TAC` layer that mixes the microphones;
* between stacks, the ISS steps of Neural FastFCA (Bando et al., EUSIPCO 2023, Sec. 3) as in
  :class:`~vae_audio.neural_fca.jd_encoder.NeuralFastFCAEncoder`: weights ``r_fmt`` from a
  shared head (``F`` outputs per mic), :func:`~vae_audio.neural_fca.iss.weighted_covariance`,
  ISS sweeps, :func:`~vae_audio.neural_fca.iss.normalise_scale`, and ``log x̃_m`` of each
  decorrelated channel fed back through a shared 1×1 convolution into ``h_m``. The sweeps
  visit the rows of ``Q`` from the loudest decorrelated channel to the quietest
  (:func:`~vae_audio.neural_fca.iss.power_order`): a sweep in the fixed order ``0..M-1``
  would not be equivariant, since the rank-1 updates do not commute;
* ``q(z_nt)``, the log-gains and ``log u_nf`` from ``mean_m h_m``
  (:class:`~vae_audio.neural_fca.encoder.LatentHead`), and the spatial gains
  ``g_nfm = mean_t(w_nfmt x̃_fmt)``, ``w = sigmoid(head(h_m))`` (``F·N`` outputs per mic),
  normalised to mean 1 over ``M``.

Equivariance. Let ``x'_m = x_π(m)``, i.e. ``x' = P x`` with ``P_{m,π(m)} = 1``. Then
``h'_m = h_π(m)`` and ``r'_m = r_π(m)``, so ``V'_m = P V_π(m) Pᵀ``. Row ``m`` of ``Q``
starts as the unit vector of mic ``m`` (``Q = I``) and the ISS update of row ``k`` maps
``P Q Pᵀ`` to ``P (Q − v q_π(k)) Pᵀ``; with the data-given sweep order every step of the
permuted input is the step of the original one for the same decorrelated channel. Hence

    Q' = P Q Pᵀ  (rows and columns permuted),  x̃' = |Q' x'|² = P x̃,  g'_{nf,m} = g_{nf,π(m)},

and the posterior, the log-gains and ``log u_nf`` are unchanged (all up to round-off).
The decorrelated outputs ``Q' x' = P (Q x)`` are those of the original, in the new order.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vae_audio.audio.features import log_power
from vae_audio.core.precision import as_float32, full_precision
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca.encoder import EncoderConfig, LatentHead, dilated_stack, gated_time_mean
from vae_audio.neural_fca.iss import (
    iss_sweep,
    normalise_scale,
    power_order,
    weighted_covariance,
)
from vae_audio.neural_fca.jd_encoder import JDEncoderOutput
from vae_audio.separation.linalg import outer_hermitian, stack_real


def _per_mic(layer: nn.Module, h: Tensor) -> Tensor:
    """``layer`` on every microphone with shared weights: ``[B, M, C, T]`` -> ``[B, M, C', T]``."""
    B, M = h.shape[:2]
    return layer(h.flatten(0, 1)).unflatten(0, (B, M))  # [B·M, C, T] -> [B, M, C', T]


def mean_other_phasors(x: Tensor, eps: float = 1e-8) -> Tensor:
    """``p_mft = u_mft · conj(mean_{m' ≠ m} u_m'ft)`` with ``u = x / sqrt(|x|² + eps²)``:
    ``x [B, M, F, T]`` complex (``M >= 2``) -> ``[B, M, F, T]`` complex, modulus ≤ 1."""
    M = x.shape[1]
    u = x * torch.rsqrt(x.real.square() + x.imag.square() + eps * eps)  # [B, M, F, T]
    others = (u.sum(1, keepdim=True) - u) / (M - 1)  # [B, M, F, T]
    return u * others.conj()


class ChannelFeatures(nn.Module):
    """``x [B, M, F, T]`` complex -> ``[B, M, 3F, T]`` real: per-mic log power
    (batch-normalised per frequency) and the real and imaginary parts of
    :func:`mean_other_phasors` (module docstring)."""

    def __init__(self, n_freq: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(n_freq)

    def forward(self, x: Tensor) -> Tensor:
        logx = _per_mic(self.norm, log_power(x, eps=1e-6))  # [B, M, F, T]
        p = mean_other_phasors(x)  # [B, M, F, T]
        return torch.cat([logx, p.real, p.imag], dim=2)  # [B, M, 3F, T]


class TAC(nn.Module):
    """Transform-average-concatenate (Luo et al., ICASSP 2020, Eqs. (1)-(4)) on
    ``h [B, M, C, T]``, with 1×1 convolutions and PReLU:

        f_m = P(h_m),   s = R(mean_m f_m),   h_m ← h_m + norm(S([f_m; s])).

    ``hidden`` is the width of ``f`` and ``s``; ``norm`` a GroupNorm over ``C`` and ``T``
    of each mic (as the FaSNet-TAC code). Equivariant to the order of the mics."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.transform = nn.Sequential(nn.Conv1d(channels, hidden, 1), nn.PReLU())
        self.average = nn.Sequential(nn.Conv1d(hidden, hidden, 1), nn.PReLU())
        self.concat = nn.Sequential(nn.Conv1d(2 * hidden, channels, 1), nn.PReLU())
        self.norm = nn.GroupNorm(1, channels)

    def forward(self, h: Tensor) -> Tensor:
        f = _per_mic(self.transform, h)  # [B, M, H, T]
        s = self.average(f.mean(1))  # [B, H, T]
        fs = torch.cat([f, s[:, None].expand_as(f)], dim=2)  # [B, M, 2H, T]
        out = _per_mic(self.concat, fs)  # [B, M, C, T]
        return h + _per_mic(self.norm, out)


class TACFastFCAEncoder(nn.Module):
    """Neural FastFCA encoder for any ``M >= 2`` (module docstring); same output as
    :class:`~vae_audio.neural_fca.jd_encoder.NeuralFastFCAEncoder`.

    Args:
        cfg: sizes (``mid_channels`` is also the hidden width of the TAC layers).
        n_freq: ``F``.
        n_src: ``N`` slots.
        latent_dim: ``D``.
        gain: also predict a per-slot, per-frame log-gain.
        iss_sweeps: ISS sweeps per ISS step.
        iss_load: diagonal loading of ``V`` (power units of the normalised mixture).
        freq_gain: also predict a per-slot frequency response ``log u_nf``.
    """

    def __init__(
        self,
        cfg: EncoderConfig,
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
        io = cfg.io_channels
        self.features = ChannelFeatures(n_freq)
        self.inp = nn.Conv1d(3 * n_freq, io, 1)
        self.blocks = nn.ModuleList([dilated_stack(cfg) for _ in range(cfg.n_blocks)])
        self.tac = nn.ModuleList([TAC(io, cfg.mid_channels) for _ in range(cfg.n_blocks)])
        self.weights = nn.ModuleList([nn.Conv1d(io, n_freq, 1) for _ in range(cfg.n_blocks - 1)])
        self.xt_in = nn.Conv1d(n_freq, io, 1, bias=False)
        self.head = LatentHead(io, n_src, latent_dim, gain, n_freq * freq_gain)
        self.g_head = nn.Conv1d(io, n_freq * n_src, 1)

    def _stack(self, i: int, h: Tensor) -> Tensor:
        """Dilated stack ``i`` on every mic, then TAC ``i``: ``[B, M, C, T]`` -> same."""
        return self.tac[i](_per_mic(self.blocks[i], h))

    def forward(self, x: Tensor) -> JDEncoderOutput:
        """``x [B, M, F, T]`` complex (power-normalised), ``M >= 2`` ->
        :class:`~vae_audio.neural_fca.jd_encoder.JDEncoderOutput`."""
        B, M, F, T = x.shape
        if M < 2:
            raise VaeAudioError(
                f"the TAC Neural FastFCA encoder needs M >= 2 microphones, got M = {M}"
            )
        xf = x.transpose(1, 2)  # [B, F, M, T]
        eye = torch.eye(M, dtype=x.dtype, device=x.device)
        xr = stack_real(xf)  # [B, F, 2M, T], shared by the rescalings
        Q, xt = normalise_scale(xf, eye.expand(B, F, M, M), xr)
        h = self._stack(0, _per_mic(self.inp, self.features(x)))  # [B, M, C, T]
        xx = outer_hermitian(xf)  # [B, F, T, M²], shared by the ISS steps
        for i, weight_head in enumerate(self.weights, start=1):
            r = as_float32(_per_mic(weight_head, h)).transpose(1, 2)  # [B, F, M, T]
            with full_precision(x.device):  # ISS statistics in float32 under autocast
                V = weighted_covariance(xf, torch.sigmoid(r), self.iss_load, xx)  # [B, F, M, M, M]
                order = power_order(xt)  # [B, F, M]: loudest decorrelated channel first
                for _ in range(self.iss_sweeps):
                    Q = iss_sweep(Q, V, order=order)
                Q, xt = normalise_scale(xf, Q, xr)
                logxt = xt.clamp_min(1e-6).log().transpose(1, 2)  # [B, M, F, T]
            h = self._stack(i, h + _per_mic(self.xt_in, logxt))  # [B, M, C, T]
        enc = self.head(h.mean(1))  # [B, C, T] -> invariant to the order of the mics
        g = gated_time_mean(self.g_head, h.flatten(0, 1), xt.transpose(1, 2).flatten(0, 1))
        g = g.unflatten(0, (B, M))  # [B, M, F, N]: per mic, shared weights
        g = g / g.mean(1, keepdim=True).clamp_min(1e-6)
        g = g.permute(0, 3, 2, 1)  # [B, N, F, M]
        return JDEncoderOutput(enc.posterior, enc.log_gain, Q, xt, g, enc.log_freq_gain)
