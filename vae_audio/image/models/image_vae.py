"""Image VAE on the shared core, optionally conditioned on a class label (CVAE).

:class:`ImageVAE` wraps :class:`vae_audio.core.vae.VAE`. With ``num_classes = K > 0`` it is
the conditional VAE of Sohn et al. 2015 (Sec. 4.1, with the prior kept at ``N(0, I)``): the
one-hot label ``[B, K]`` enters both the encoder ``q(z | x, y)`` and the decoder
``p(x | z, y)``. The same model serves the plain VAE, β-VAE, β-TCVAE and InfoVAE, which
differ only in their objective (:mod:`vae_audio.image.objectives`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vae_audio.core.distributions import DiagonalGaussian
from vae_audio.core.likelihoods import Likelihood
from vae_audio.core.vae import VAE, VAEOutput
from vae_audio.errors import VaeAudioError


class ImageVAE(nn.Module):
    """``q(z | x [, y])``, ``p(x | z [, y])`` with a standard-normal prior.

    Args:
        encoder: ``x [B, C, H, W] (, one-hot [B, K]) -> DiagonalGaussian [B, D]``.
        decoder: ``z [B, D] (, one-hot [B, K]) -> [B, C, H, W]`` likelihood parameters.
        likelihood: e.g. :class:`~vae_audio.core.likelihoods.BernoulliLikelihood`.
        latent_dim: ``D``.
        num_classes: ``K`` for a conditional VAE, 0 otherwise.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: Likelihood,
        latent_dim: int,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        self.vae = VAE(encoder, decoder, likelihood)
        self.latent_dim = latent_dim
        self.num_classes = num_classes

    def condition(self, label: Tensor | None) -> Tensor | None:
        """``[B]`` int labels -> ``[B, K]`` one-hot (None for an unconditional model)."""
        if self.num_classes == 0:
            return None
        if label is None:
            raise VaeAudioError(
                "this conditional VAE needs class labels; use a data set that provides them "
                "(digits, mnist) or set model.conditional: false"
            )
        return F.one_hot(label.long(), self.num_classes).float()

    def forward(self, x: Tensor, label: Tensor | None = None, sample: bool = True) -> VAEOutput:
        """Negative ELBO terms per example (``recon_nll [B]``, ``kl [B]``, nats)."""
        return self.vae(x, condition=self.condition(label), sample=sample)

    def encode(self, x: Tensor, label: Tensor | None = None) -> DiagonalGaussian:
        """``q(z | x [, y])`` with ``[B, D]`` parameters."""
        return self.vae.encode(x, self.condition(label))

    @torch.no_grad()
    def generate(self, z: Tensor, label: Tensor | None = None) -> Tensor:
        """Expected image ``[B, C, H, W]`` for codes ``z [B, D]``."""
        return self.vae.generate(z, self.condition(label))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, label: Tensor | None = None) -> Tensor:
        """Expected image decoded from the posterior mean, ``[B, C, H, W]``."""
        return self.vae.reconstruct(x, self.condition(label))
