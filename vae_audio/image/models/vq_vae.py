"""VQ-VAE with an EMA codebook and a learned autoregressive prior (van den Oord et al. 2017).

``x → z_e = enc(x) [B, D, h, w] → c = nearest codes [B, h, w] → z_q = e_c → dec(z_q) →
p(x | z_q)``. The posterior ``q(c | x)`` is one-hot (deterministic), so the KL to a prior
``p(c)`` is ``−log p(c(x))`` (Sec. 3.1: ``h w log K`` for the uniform prior). Here ``p(c)``
is the causal transformer :class:`~vae_audio.image.networks.CodePrior`, fitted jointly on the
detached code indices: its gradient never reaches the encoder or the codebook, so training it
alongside equals the paper's second stage on the current codes. Per-image terms (nats):

- ``recon_nll``: ``−log p(x | z_q)`` summed over pixels;
- ``kl``: ``−log p(c)`` summed over the ``h w`` positions (the prior's NLL);
- ``commitment``: ``‖z_e − sg(z_q)‖²`` summed over D, h and w (Eq. (3), weight β).

``recon_nll + kl`` is a negative ELBO with the learned prior, comparable with the Gaussian
VAEs' validation ELBO. Samples: codes from the prior, decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vae_audio.core.likelihoods import Likelihood
from vae_audio.image.networks.code_prior import CodePrior
from vae_audio.image.vq import VectorQuantizer


@dataclass
class VQVAEOutput:
    """Per-image terms ``[B]`` (nats), the codes, and the batch's codebook statistics."""

    recon_nll: Tensor
    kl: Tensor
    commitment: Tensor
    indices: Tensor  # [B, h, w]
    perplexity: Tensor  # scalar
    usage: Tensor  # scalar, fraction of the K codes used in the batch
    decoded: Tensor  # [B, C, H, W] likelihood parameters

    def loss(self, commitment_weight: float = 0.25) -> Tensor:
        """``mean_B (recon_nll + β commitment + prior NLL)``; the codebook moves by EMA."""
        return (self.recon_nll + commitment_weight * self.commitment + self.kl).mean()


class VQVAE(nn.Module):
    """Args: ``encoder x -> z_e [B, D, h, w]``, a :class:`VectorQuantizer`, ``decoder z_q ->
    [B, C, H, W]`` likelihood parameters, the likelihood, and the code prior."""

    num_classes = 0

    def __init__(
        self,
        encoder: nn.Module,
        quantizer: VectorQuantizer,
        decoder: nn.Module,
        likelihood: Likelihood,
        prior: CodePrior,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.quantizer = quantizer
        self.decoder = decoder
        self.likelihood = likelihood
        self.prior = prior

    @property
    def grid_shape(self) -> tuple[int, int]:
        return self.prior.grid_shape

    def forward(self, x: Tensor, label: Tensor | None = None) -> VQVAEOutput:
        """Encode, quantise (EMA update in training mode), decode and score ``x [B, C, H, W]``."""
        del label
        q = self.quantizer(self.encoder(x))
        decoded = self.decoder(q.z_q)  # [B, C, H, W]
        nll = self.likelihood.nll(x, decoded).flatten(1).sum(1)  # [B]
        prior_nll = -self.prior.log_prob(q.indices)  # [B]
        return VQVAEOutput(nll, prior_nll, q.commitment, q.indices, q.perplexity, q.usage, decoded)

    @torch.no_grad()
    def codes(self, x: Tensor) -> Tensor:
        """Code indices ``[B, h, w]`` of ``x`` (no codebook update)."""
        return self.quantizer.quantise(self.encoder(x))

    @torch.no_grad()
    def decode_codes(self, indices: Tensor) -> Tensor:
        """Expected images ``[B, C, H, W]`` for code grids ``[B, h, w]``."""
        return self.likelihood.mean(self.decoder(self.quantizer.lookup(indices)))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, label: Tensor | None = None) -> Tensor:
        """Expected images decoded from the nearest codes of ``x``."""
        del label
        return self.decode_codes(self.codes(x))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images ``[n, C, H, W]``: codes from the prior, decoded."""
        return self.decode_codes(self.prior.sample(n, generator))
