"""A VAE as the composition encoder → reparameterised sample → decoder → likelihood.

The same class serves the speech prior (encoder on log-power frames, decoder → PSD,
:class:`~vae_audio.core.likelihoods.ComplexGaussianLikelihood` on the power) and the image
VAEs (decoder → logits, :class:`~vae_audio.core.likelihoods.BernoulliLikelihood`).

Contract of the parts:

- ``encoder(x)`` (or ``encoder(x, condition)``) returns a
  :class:`~vae_audio.core.distributions.DiagonalGaussian` or ``(mean, logvar)``, each
  ``[B, ..., D]`` (e.g. ``[B, D]`` for images, ``[B, T, D]`` for frame-wise speech).
- ``decoder(z)`` (or ``decoder(z, condition)``) maps ``[B, ..., D]`` to whatever the likelihood
  reads (a tensor or a tuple of tensors with leading axis ``B``).
- ``likelihood.nll(target, decoded)`` is elementwise; the VAE sums it over the data axes.

ELBO per example (Kingma & Welling 2014, Eq. (10)):
``E_q[log p(x | z)] − KL(q(z | x) ‖ N(0, I))``, the expectation by ``n_samples`` draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vae_audio.core.distributions import DiagonalGaussian, as_gaussian
from vae_audio.core.likelihoods import Likelihood

Decoded = Tensor | tuple[Tensor, ...]


@dataclass
class VAEOutput:
    """Result of :meth:`VAE.forward`.

    Attributes:
        recon_nll: ``−log p(target | z)`` summed over the data axes and averaged over the
            ``n_samples`` draws (nats): ``[B]`` by default, ``[B, T]`` with ``data_dims=1`` on a
            ``[B, T, F]`` target.
        kl: ``KL(q(z|x) ‖ N(0, I))`` summed over D (nats), the posterior's batch shape
            (``[B]`` or ``[B, T]``).
        kl_per_dim: ``[..., D]`` the KL per latent dimension (nats).
        z: the latent sample(s): ``[B, ..., D]``, or ``[n, B, ..., D]`` when ``n_samples > 1``
            (the posterior mean when sampling is off).
        posterior: ``q(z | x)``.
        decoded: decoder output for ``z`` (leading ``[n]`` axis when ``n_samples > 1``).
    """

    recon_nll: Tensor
    kl: Tensor
    kl_per_dim: Tensor
    z: Tensor
    posterior: DiagonalGaussian
    decoded: Decoded

    def elbo(self, beta: float | Tensor = 1.0) -> Tensor:
        """Per-example ``−(recon_nll + β KL)`` (nats); see :func:`elbo`."""
        return elbo(self.recon_nll, self.kl, beta)

    def loss(self, beta: float | Tensor = 1.0) -> Tensor:
        """Scalar ``mean_B (recon_nll + β KL)``: the negative (β-)ELBO averaged over examples."""
        return -self.elbo(beta).mean()


def elbo(recon_nll: Tensor, kl: Tensor, beta: float | Tensor = 1.0) -> Tensor:
    """``−(recon_nll + β KL)`` (nats), reduced to the shape with fewer axes.

    The extra trailing axes of one term are summed, so ``recon_nll [B]`` with ``kl [B, T]`` gives
    ``[B]`` (KL summed over T) and equal shapes give that shape.
    """
    ndim = min(recon_nll.dim(), kl.dim())
    return -(_sum_to_ndim(recon_nll, ndim) + beta * _sum_to_ndim(kl, ndim))


class VAE(nn.Module):
    """Encoder, decoder and likelihood composed into a VAE with a ``N(0, I)`` prior.

    Args:
        encoder: ``x [B, ...] → DiagonalGaussian | (mean, logvar)``, ``[B, ..., D]``.
        decoder: ``z [B, ..., D] → decoded``.
        likelihood: a :class:`~vae_audio.core.likelihoods.Likelihood`.
        data_dims: number of trailing target axes summed in ``recon_nll``; ``None`` sums every
            axis but the first (one value per example).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: Likelihood,
        data_dims: int | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.data_dims = data_dims

    def encode(self, x: Tensor, condition: Tensor | None = None) -> DiagonalGaussian:
        """``q(z | x)`` with ``[B, ..., D]`` parameters."""
        out = self.encoder(x) if condition is None else self.encoder(x, condition)
        return as_gaussian(out)

    def decode(self, z: Tensor, condition: Tensor | None = None) -> Decoded:
        """Decoder output for ``z [B, ..., D]``."""
        return self.decoder(z) if condition is None else self.decoder(z, condition)

    def forward(
        self,
        x: Tensor,
        target: Tensor | None = None,
        n_samples: int = 1,
        condition: Tensor | None = None,
        sample: bool = True,
    ) -> VAEOutput:
        """Encode ``x``, draw ``z``, decode and score ``target`` (``x`` when None).

        Args:
            x: encoder input ``[B, ...]`` (e.g. log-power frames or images).
            target: what the likelihood scores (e.g. the power ``|x|²``), leading axis B.
            n_samples: reparameterised draws per example; ``recon_nll`` averages over them.
            condition: optional ``[B, ...]`` passed to encoder and decoder (conditional VAE).
            sample: draw ``z`` (training) or use the posterior mean (evaluation; then
                ``n_samples`` is ignored).
        """
        target = x if target is None else target
        posterior = self.encode(x, condition)
        if not sample:
            z = posterior.mean
            decoded = self.decode(z, condition)
            nll = self._reduce_nll(self.likelihood.nll(target, decoded))
        elif n_samples == 1:
            z = posterior.rsample()  # [B, ..., D]
            decoded = self.decode(z, condition)
            nll = self._reduce_nll(self.likelihood.nll(target, decoded))
        else:
            z = posterior.rsample(n_samples)  # [n, B, ..., D]
            flat_z = z.flatten(0, 1)  # [n * B, ..., D]
            flat_cond = None if condition is None else _repeat(condition, n_samples)
            decoded = _unflatten(self.decode(flat_z, flat_cond), n_samples)  # [n, B, ...]
            target_n = target.unsqueeze(0).expand(n_samples, *target.shape)  # [n, B, ...]
            nll = self.likelihood.nll(target_n, decoded)  # [n, B, ...]
            nll = self._reduce_nll(nll, lead=2).mean(0)  # [n, B] -> [B]
        kl_per_dim = posterior.kl_per_dim()
        return VAEOutput(
            recon_nll=nll,
            kl=kl_per_dim.sum(-1),
            kl_per_dim=kl_per_dim,
            z=z,
            posterior=posterior,
            decoded=decoded,
        )

    @torch.no_grad()
    def reconstruct(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """Expected observation decoded from the posterior mean (no sampling, no gradient)."""
        return self.likelihood.mean(self.decode(self.encode(x, condition).mean, condition))

    @torch.no_grad()
    def generate(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        """Expected observation for given codes ``z [B, ..., D]`` (e.g. prior samples)."""
        return self.likelihood.mean(self.decode(z, condition))

    def _reduce_nll(self, nll: Tensor, lead: int = 1) -> Tensor:
        """Sum the elementwise NLL over the data axes; ``lead`` leading axes are never summed."""
        n_axes = nll.dim() - lead if self.data_dims is None else self.data_dims
        return nll.sum(dim=tuple(range(nll.dim() - n_axes, nll.dim()))) if n_axes > 0 else nll


def _sum_to_ndim(x: Tensor, ndim: int) -> Tensor:
    return x.sum(dim=tuple(range(ndim, x.dim()))) if x.dim() > ndim else x


def _repeat(condition: Tensor, n: int) -> Tensor:
    # [B, ...] -> [n, B, ...] -> [n * B, ...]
    return condition.unsqueeze(0).expand(n, *condition.shape).flatten(0, 1)


def _unflatten(decoded: Decoded, n: int) -> Decoded:
    if isinstance(decoded, tuple):
        return tuple(_unflatten(d, n) for d in decoded)
    return decoded.unflatten(0, (n, -1))  # [n * B, ...] -> [n, B, ...]
