"""Spectrogram VAE with a complex-Gaussian decoder: the toolkit's speech prior.

Generative model (Bando et al. 2018, Eq. (3); Leglaive et al. 2018, Eq. (1)–(2)):

    z_t ~ N(0, I_D),        x_ft | z_t ~ N_C(0, g_f(z_t)),

so the decoder ``g`` maps a latent frame to a power spectral density (PSD) and the
likelihood of an STFT frame is the Itakura–Saito-shaped complex Gaussian. The encoder
``q(z_t | x) = N(μ, diag σ²)`` reads log-power spectra.

Two architectures share the decoder form:

- ``"mlp"``: the frame-wise MLP of Leglaive et al. 2018 (F → 128 tanh → D, and back);
- ``"conv"``: a temporal encoder of dilated residual 1-D convolutions that sees ±context
  frames. Its decoder stays frame-wise, so ``g_f(z_t)`` is a per-frame prior that
  Metropolis–Hastings and gradient inference in the separators can use frame by frame.

Latents are ``[..., T, D]`` (``D`` last, as :class:`~vae_audio.core.distributions.DiagonalGaussian`
expects); spectra are ``[..., F, T]``. Decoder outputs ``exp(o) + psd_floor``, smooth and
bounded away from zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from vae_audio.audio.stft import StftConfig
from vae_audio.core.distributions import DiagonalGaussian
from vae_audio.errors import VaeAudioError

ARCHS = ("mlp", "conv")


@dataclass(frozen=True)
class SpeechVAEConfig:
    """Architecture of a :class:`SpeechVAE`.

    Attributes:
        arch: ``"mlp"`` (frame-wise) or ``"conv"`` (temporal encoder).
        n_freq: ``F``, number of STFT bins (``n_fft // 2 + 1``).
        latent_dim: ``D``.
        hidden: hidden width of encoder and decoder.
        layers: hidden layers of the decoder MLP (and residual conv blocks for ``"conv"``).
        kernel_size: temporal kernel of the conv encoder (odd).
        log_eps: floor inside the encoder's ``log(|x|² + log_eps)``.
        psd_floor: floor added to the decoded PSD.
    """

    arch: str = "mlp"
    n_freq: int = 257
    latent_dim: int = 16
    hidden: int = 128
    layers: int = 1
    kernel_size: int = 5
    log_eps: float = 1e-6
    psd_floor: float = 1e-6

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise VaeAudioError(
                f"unknown speech VAE arch {self.arch!r}; use one of {', '.join(ARCHS)}"
            )
        if self.kernel_size % 2 == 0:
            raise VaeAudioError(f"model.kernel_size must be odd, got {self.kernel_size}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SpeechVAEConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise VaeAudioError(
                f"unknown speech VAE model settings {unknown}; known: {sorted(known)}"
            )
        return cls(**d)


class _MLPEncoder(nn.Module):
    """Frame-wise ``[..., F, T] log-power -> (μ, log σ²)`` each ``[..., T, D]``."""

    def __init__(self, cfg: SpeechVAEConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.n_freq, cfg.hidden), nn.Tanh())
        self.head = nn.Linear(cfg.hidden, 2 * cfg.latent_dim)

    def forward(self, logpow: Tensor) -> tuple[Tensor, Tensor]:
        h = self.net(logpow.transpose(-1, -2))  # [..., T, hidden]
        return self.head(h).chunk(2, dim=-1)  # 2 x [..., T, D]


class _ResConv(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=pad, dilation=dilation)
        self.norm = nn.GroupNorm(1, channels)
        self.act = nn.PReLU(channels)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.act(self.norm(self.conv(h)))  # [B', C, T]


class _ConvEncoder(nn.Module):
    """Temporal ``[..., F, T] -> (μ, log σ²)``. The dilated convolutions reach
    ``1 + (k−1)(2^L − 1)`` frames; each block's ``GroupNorm(1, C)`` normalises over the
    channels and all frames of the input, so every frame's posterior also depends on the
    whole input's statistics (an input encoded in chunks differs from it encoded whole)."""

    def __init__(self, cfg: SpeechVAEConfig) -> None:
        super().__init__()
        self.inp = nn.Conv1d(cfg.n_freq, cfg.hidden, 1)
        self.blocks = nn.Sequential(
            *[_ResConv(cfg.hidden, cfg.kernel_size, 2**i) for i in range(max(cfg.layers, 1))]
        )
        self.head = nn.Conv1d(cfg.hidden, 2 * cfg.latent_dim, 1)

    def forward(self, logpow: Tensor) -> tuple[Tensor, Tensor]:
        lead, (n_freq, n_frames) = logpow.shape[:-2], logpow.shape[-2:]
        h = logpow.reshape(-1, n_freq, n_frames)  # [B', F, T]
        out = self.head(self.blocks(torch.tanh(self.inp(h))))  # [B', 2D, T]
        out = out.transpose(1, 2).reshape(*lead, n_frames, -1)  # [..., T, 2D]
        return out.chunk(2, dim=-1)


class _MLPDecoder(nn.Module):
    """Frame-wise ``z [..., T, D] -> log g(z) [..., F, T]``."""

    def __init__(self, cfg: SpeechVAEConfig) -> None:
        super().__init__()
        widths = [cfg.latent_dim] + [cfg.hidden] * max(cfg.layers, 1)
        body: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            body += [nn.Linear(w_in, w_out), nn.Tanh()]
        self.net = nn.Sequential(*body, nn.Linear(widths[-1], cfg.n_freq))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).transpose(-1, -2)  # [..., F, T]


class SpeechVAE(nn.Module):
    """The speech prior: encoder ``q(z_t | x)``, decoder ``g_f(z_t)`` and its STFT settings.

    Args:
        config: architecture.
        stft: the analysis the model was trained with; separators refuse other settings
            (:meth:`check_stft`).
    """

    def __init__(self, config: SpeechVAEConfig, stft: StftConfig | None = None) -> None:
        super().__init__()
        self.config = config
        self.stft_config = stft or StftConfig()
        if self.stft_config.n_freq != config.n_freq:
            raise VaeAudioError(
                f"speech VAE n_freq={config.n_freq} does not match the STFT "
                f"(n_fft={self.stft_config.n_fft} gives {self.stft_config.n_freq} bins); "
                "set model.n_freq to n_fft // 2 + 1"
            )
        self.encoder = _MLPEncoder(config) if config.arch == "mlp" else _ConvEncoder(config)
        self.decoder = _MLPDecoder(config)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, power: Tensor) -> DiagonalGaussian:
        """Posterior ``q(z | x)`` from power spectra ``|x|²`` ``[..., F, T]`` -> ``[..., T, D]``."""
        mean, logvar = self.encoder(torch.log(power + self.config.log_eps))
        return DiagonalGaussian(mean, logvar.clamp(-12.0, 8.0))

    def decode(self, z: Tensor) -> Tensor:
        """Unit-gain speech PSD ``g(z)``: ``[..., T, D] -> [..., F, T]`` (power, > 0)."""
        return torch.exp(self.decoder(z).clamp(max=30.0)) + self.config.psd_floor

    def check_stft(self, stft: StftConfig, what: str = "this speech prior") -> None:
        """Raise :class:`VaeAudioError` if ``stft`` differs from the training STFT."""
        stft.check_compatible(self.stft_config, what)

    def forward(self, power: Tensor) -> SpeechVAEOutput:
        """One reparameterised pass: ``power [..., F, T]`` -> :class:`SpeechVAEOutput`."""
        posterior = self.encode(power)
        z = posterior.rsample()  # [..., T, D]
        return SpeechVAEOutput(psd=self.decode(z), z=z, posterior=posterior)


@dataclass
class SpeechVAEOutput:
    """Result of :meth:`SpeechVAE.forward`.

    Attributes:
        psd: decoded PSD ``g(z*)`` ``[..., F, T]``.
        z: the sample ``z*`` ``[..., T, D]``.
        posterior: ``q(z | x)`` with parameters ``[..., T, D]``.
    """

    psd: Tensor
    z: Tensor
    posterior: DiagonalGaussian
