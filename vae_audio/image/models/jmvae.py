"""Joint multimodal VAE with the JMVAE-kl objective (Suzuki, Nakayama & Matsuo 2016).

Modalities: an image ``x`` and its class label ``y``. The joint encoder ``q(z | x, y)``
drives the ELBO of the generative model ``p(x | z) p(y | z) p(z)``; the unimodal encoders
``q(z | x)`` and ``q(z | y)`` are pulled towards it so that either modality alone can infer
``z``. Loss per example (the JMVAE-kl objective, nats, minimised):

``L = −E_{q(z|x,y)}[log p(x|z) + log p(y|z)] + KL(q(z|x,y) ‖ p(z))
      + α [KL(q(z|x,y) ‖ q(z|x)) + KL(q(z|x,y) ‖ q(z|y))]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vae_audio.core.distributions import DiagonalGaussian, as_gaussian
from vae_audio.core.likelihoods import Likelihood


def kl_diagonal(q: DiagonalGaussian, p: DiagonalGaussian) -> Tensor:
    """``KL(q ‖ p)`` between diagonal Gaussians, summed over D: ``[...]`` (nats).

    ``½ Σ_d [log σ_p² − log σ_q² + (σ_q² + (μ_q − μ_p)²) / σ_p² − 1]``.
    """
    per_dim = 0.5 * (
        p.logvar - q.logvar + (q.var + (q.mean - p.mean).pow(2)) * torch.exp(-p.logvar) - 1.0
    )
    return per_dim.sum(-1)


@dataclass
class JMVAEOutput:
    """Per-example terms ``[B]`` (nats) of the JMVAE-kl loss, and the joint posterior."""

    recon_nll_x: Tensor
    recon_nll_y: Tensor
    kl: Tensor  # KL(q(z|x,y) ‖ N(0, I))
    kl_x: Tensor  # KL(q(z|x,y) ‖ q(z|x))
    kl_y: Tensor  # KL(q(z|x,y) ‖ q(z|y))
    z: Tensor
    posterior: DiagonalGaussian

    def loss(self, alpha: float = 1.0) -> Tensor:
        """Scalar JMVAE-kl loss, mean over B (nats per example)."""
        elbo_terms = self.recon_nll_x + self.recon_nll_y + self.kl
        return (elbo_terms + alpha * (self.kl_x + self.kl_y)).mean()


class JMVAE(nn.Module):
    """Image + label JMVAE.

    Args:
        joint_encoder: ``(x [B, C, H, W], one-hot [B, K]) -> q(z | x, y)``.
        image_encoder: ``x -> q(z | x)``.
        label_encoder: ``one-hot [B, K] -> q(z | y)``.
        image_decoder: ``z [B, D] -> [B, C, H, W]`` likelihood parameters.
        label_decoder: ``z [B, D] -> [B, K]`` class logits.
        likelihood: image likelihood.
        latent_dim, num_classes: ``D``, ``K``.
    """

    def __init__(
        self,
        joint_encoder: nn.Module,
        image_encoder: nn.Module,
        label_encoder: nn.Module,
        image_decoder: nn.Module,
        label_decoder: nn.Module,
        likelihood: Likelihood,
        latent_dim: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.joint_encoder = joint_encoder
        self.image_encoder = image_encoder
        self.label_encoder = label_encoder
        self.image_decoder = image_decoder
        self.label_decoder = label_decoder
        self.likelihood = likelihood
        self.latent_dim = latent_dim
        self.num_classes = num_classes

    def _one_hot(self, label: Tensor) -> Tensor:
        return F.one_hot(label.long(), self.num_classes).float()  # [B] -> [B, K]

    def forward(self, x: Tensor, label: Tensor) -> JMVAEOutput:
        y = self._one_hot(label)
        joint = as_gaussian(self.joint_encoder(x, y))
        z = joint.rsample()  # [B, D]
        nll_x = self.likelihood.nll(x, self.image_decoder(z)).flatten(1).sum(1)  # [B]
        nll_y = F.cross_entropy(self.label_decoder(z), label.long(), reduction="none")  # [B]
        q_x = as_gaussian(self.image_encoder(x))
        q_y = as_gaussian(self.label_encoder(y))
        return JMVAEOutput(
            nll_x, nll_y, joint.kl(), kl_diagonal(joint, q_x), kl_diagonal(joint, q_y), z, joint
        )

    def encode(self, x: Tensor, label: Tensor | None = None) -> DiagonalGaussian:
        """``q(z | x, y)`` when the label is given, else the image-only ``q(z | x)``."""
        if label is None:
            return as_gaussian(self.image_encoder(x))
        return as_gaussian(self.joint_encoder(x, self._one_hot(label)))

    def encode_label(self, label: Tensor) -> DiagonalGaussian:
        """``q(z | y)`` with ``[B, D]`` parameters."""
        return as_gaussian(self.label_encoder(self._one_hot(label)))

    @torch.no_grad()
    def generate(self, z: Tensor, label: Tensor | None = None) -> Tensor:
        """Expected image ``[B, C, H, W]`` for ``z [B, D]`` (the label is not used by p(x|z))."""
        del label
        return self.likelihood.mean(self.image_decoder(z))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, label: Tensor | None = None) -> Tensor:
        """Image decoded from the posterior mean (joint if ``label`` is given)."""
        return self.generate(self.encode(x, label).mean)

    @torch.no_grad()
    def classify(self, x: Tensor) -> Tensor:
        """Predicted labels ``[B]`` through ``q(z | x)`` and ``p(y | z)``."""
        return self.label_decoder(self.encode(x).mean).argmax(-1)
