"""Affine-transform VAE: pose in six latent dimensions, content in the rest.

The encoder outputs ``q(z | x)`` over ``z = [a, z_c]`` with ``a ∈ R⁶`` (an affine matrix
``A``) and the content code ``z_c``; the decoder is the coordinate MLP of
:mod:`vae_audio.image.networks.affine`, which reads the pixel grid moved by
``[I | 0] + 0.1 · A``. Training is the plain ELBO. The content prior is ``N(0, I)``; the
affine prior is ``N(0, diag(s²))`` with ``s = affine_prior_std`` (one value, or six for the
entries of ``A`` in row-major order ``a11 a12 tx a21 a22 ty``; 1 by default). With ``s = 1``
a 30° rotation costs about 27 nats of KL (off-diagonal entries near ``10 sin 30°``), more
than encoding the pose in the content code. Widening the prior of the off-diagonal entries
(``[1, 10, 1, 10, 1, 1]``; spatial-VAE, Bepler et al. 2019, likewise puts a wide prior on the
rotation) makes rotation and shear cheap while scale and translation stay tied to ``A = 0``.
The KL to ``N(0, s_d²)`` per dimension is ``½ [(σ² + μ²)/s_d² − 1 − log σ² + log s_d²]``
(nats).
At reconstruction time ``transform=False`` sets ``A = 0``: the digit is rendered in the
canonical pose, which removes the rotation/shear the encoder explained with ``a``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vae_audio.core.distributions import DiagonalGaussian, as_gaussian
from vae_audio.core.likelihoods import Likelihood
from vae_audio.core.vae import VAE, VAEOutput
from vae_audio.errors import VaeAudioError
from vae_audio.image.networks.affine import AFFINE_DIM, CoordinateDecoder


class AffineVAE(nn.Module):
    """Args: encoder ``x -> q(z | x)`` with ``D = 6 + D_c``; a :class:`CoordinateDecoder`;
    the likelihood; ``affine_prior_std`` ``s`` of the prior on the six affine dimensions."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: CoordinateDecoder,
        likelihood: Likelihood,
        affine_prior_std: float | Sequence[float] = 1.0,
    ):
        super().__init__()
        self.vae = VAE(encoder, decoder, likelihood)
        self.latent_dim = AFFINE_DIM + decoder.content_dim
        self.num_classes = 0
        std = torch.as_tensor(affine_prior_std, dtype=torch.float32).expand(AFFINE_DIM)
        if not bool((std > 0).all()):
            raise VaeAudioError(
                f"affine_prior_std={affine_prior_std!r}: give one positive std or six (A row-major)"
            )
        self.register_buffer("affine_log_var", 2.0 * torch.log(std).clone(), persistent=False)

    def forward(self, x: Tensor, label: Tensor | None = None, sample: bool = True) -> VAEOutput:
        """Negative ELBO terms per example (``recon_nll [B]``, ``kl [B]``, nats)."""
        del label
        out = self.vae(x, sample=sample)
        if not bool(self.affine_log_var.any()):
            return out  # unit prior everywhere: the core's KL is already right
        q = out.posterior
        log_s2 = self.affine_log_var.to(q.mean.dtype)  # [6]
        affine_kl = 0.5 * (
            (q.var[:, :AFFINE_DIM] + q.mean[:, :AFFINE_DIM].pow(2)) * torch.exp(-log_s2)
            - 1.0
            - q.logvar[:, :AFFINE_DIM]
            + log_s2
        )  # [B, 6]: KL(q(a_d | x) ‖ N(0, s_d²))
        kl_per_dim = torch.cat([affine_kl, out.kl_per_dim[:, AFFINE_DIM:]], dim=1)  # [B, D]
        return dataclasses.replace(out, kl_per_dim=kl_per_dim, kl=kl_per_dim.sum(-1))

    def encode(self, x: Tensor, label: Tensor | None = None) -> DiagonalGaussian:
        del label
        return as_gaussian(self.vae.encoder(x))

    @torch.no_grad()
    def generate(self, z: Tensor, label: Tensor | None = None, transform: bool = True) -> Tensor:
        """Expected image ``[B, 1, H, W]`` for ``z [B, 6 + D_c]``; ``transform=False``: A = 0."""
        del label
        return self.vae.likelihood.mean(self.vae.decoder(z, transform=transform))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, label: Tensor | None = None, transform: bool = True) -> Tensor:
        """Reconstruction from the posterior mean; ``transform=False`` normalises the pose."""
        return self.generate(self.encode(x).mean, transform=transform)
