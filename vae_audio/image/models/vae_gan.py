"""VAE-GAN (Larsen, Sønderby, Larochelle & Winther 2016): a VAE whose decoder is a GAN generator.

Three networks: encoder ``q(z | x)``, decoder (generator) ``z -> x̃`` and discriminator
``x -> (logit, Dis_l(x))``. Training (:mod:`vae_audio.image.vae_gan_objective`) replaces the
pixel likelihood by a Gaussian one on the discriminator's features. ``forward`` still returns
the pixel-likelihood ELBO terms (:class:`~vae_audio.core.vae.VAEOutput`), which the
evaluation reports for comparison with the other VAEs (the model does not optimise them).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vae_audio.core.distributions import DiagonalGaussian
from vae_audio.core.likelihoods import Likelihood
from vae_audio.core.vae import VAE, VAEOutput
from vae_audio.image.networks.discriminator import Discriminator


class VAEGAN(nn.Module):
    """Args: encoder ``x -> q(z | x) [B, D]``, decoder ``z -> [B, C, H, W]`` likelihood
    parameters, the :class:`Discriminator`, the pixel likelihood and ``latent_dim`` D."""

    num_classes = 0

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        discriminator: Discriminator,
        likelihood: Likelihood,
        latent_dim: int,
    ) -> None:
        super().__init__()
        self.vae = VAE(encoder, decoder, likelihood)
        self.discriminator = discriminator
        self.latent_dim = latent_dim

    def networks(self) -> dict[str, nn.Module]:
        """The three separately optimised networks, by name."""
        return {
            "encoder": self.vae.encoder,
            "decoder": self.vae.decoder,
            "discriminator": self.discriminator,
        }

    def forward(self, x: Tensor, label: Tensor | None = None, sample: bool = True) -> VAEOutput:
        """Pixel-likelihood ELBO terms per image (``recon_nll [B]``, ``kl [B]``, nats)."""
        del label
        return self.vae(x, sample=sample)

    def encode(self, x: Tensor, label: Tensor | None = None) -> DiagonalGaussian:
        del label
        return self.vae.encode(x)

    def render(self, z: Tensor) -> Tensor:
        """Generated image ``[B, C, H, W]`` for ``z [B, D]``, differentiable (what Dis sees)."""
        return self.vae.likelihood.mean(self.vae.decoder(z))

    @torch.no_grad()
    def generate(self, z: Tensor, label: Tensor | None = None) -> Tensor:
        del label
        return self.render(z)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, label: Tensor | None = None) -> Tensor:
        del label
        return self.vae.reconstruct(x)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images decoded from ``z ~ N(0, I)`` (drawn on the CPU from ``generator``)."""
        z = torch.randn(n, self.latent_dim, generator=generator)
        return self.generate(z.to(next(self.parameters()).device))
