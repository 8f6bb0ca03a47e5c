"""VAE with a learnable Gaussian-mixture prior (:mod:`vae_audio.image.mixture_prior`).

Encoder ``q(z | x) = N(μ(x), diag σ²(x))`` and decoder as in :class:`ImageVAE`; the prior
``p(z) = Σ_k π_k N(μ_k, diag σ_k²)`` has no closed-form KL, so the KL is the one-sample Monte
Carlo estimate ``log q(z | x) − log p(z)`` at the reparameterised ``z`` (its gradient reaches
encoder, decoder and prior). The mixture lets the aggregate posterior be multimodal; an image
is clustered by the component most likely to have produced its posterior mean,
``argmax_k log π_k + log N(μ(x); μ_k, σ_k²)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vae_audio.core.distributions import DiagonalGaussian
from vae_audio.core.likelihoods import Likelihood
from vae_audio.core.vae import VAE
from vae_audio.image.mixture_prior import MixturePrior


@dataclass
class MixtureVAEOutput:
    """Per-image terms ``[B]`` (nats) and the latent sample.

    Attributes:
        recon_nll: ``−log p(x | z)`` summed over pixels.
        kl: one-sample estimate ``log q(z | x) − log p(z)``.
        z: ``[B, D]`` the sample (the posterior mean when sampling is off).
        posterior: ``q(z | x)``.
        decoded: decoder output for ``z``.
    """

    recon_nll: Tensor
    kl: Tensor
    z: Tensor
    posterior: DiagonalGaussian
    decoded: Tensor


class MixturePriorVAE(nn.Module):
    """Args: encoder ``x -> q(z | x) [B, D]``, decoder ``z -> [B, C, H, W]``, the likelihood,
    ``latent_dim`` D and ``num_components`` K of the prior."""

    num_classes = 0

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: Likelihood,
        latent_dim: int,
        num_components: int,
    ) -> None:
        super().__init__()
        self.vae = VAE(encoder, decoder, likelihood)
        self.prior = MixturePrior(num_components, latent_dim)
        self.latent_dim = latent_dim

    def forward(
        self, x: Tensor, label: Tensor | None = None, sample: bool = True
    ) -> MixtureVAEOutput:
        """Negative-ELBO terms of ``x [B, C, H, W]`` with the Monte Carlo KL."""
        del label
        q = self.vae.encode(x)
        z = q.rsample() if sample else q.mean  # [B, D]
        decoded = self.vae.decode(z)
        nll = self.vae.likelihood.nll(x, decoded).flatten(1).sum(1)  # [B]
        kl = q.log_prob(z) - self.prior.log_prob(z)  # [B]
        return MixtureVAEOutput(nll, kl, z, q, decoded)

    def encode(self, x: Tensor, label: Tensor | None = None) -> DiagonalGaussian:
        """``q(z | x)`` with ``[B, D]`` parameters."""
        del label
        return self.vae.encode(x)

    @torch.no_grad()
    def cluster(self, x: Tensor) -> Tensor:
        """Most likely prior component ``[B]`` of each image's posterior mean."""
        return self.prior.log_responsibilities(self.encode(x).mean).argmax(-1)

    @torch.no_grad()
    def generate(self, z: Tensor, label: Tensor | None = None) -> Tensor:
        """Expected image ``[B, C, H, W]`` for codes ``z [B, D]``."""
        del label
        return self.vae.generate(z)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, label: Tensor | None = None) -> Tensor:
        del label
        return self.vae.reconstruct(x)

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, component: int | None = None
    ) -> Tensor:
        """``n`` images from the mixture prior (or from one ``component``)."""
        z, _ = self.prior.sample(n, generator, component)
        return self.generate(z)
