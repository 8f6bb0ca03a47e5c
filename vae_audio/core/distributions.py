"""Diagonal Gaussian posteriors and the closed-form KL to the standard-normal prior.

The encoder of every VAE in the toolkit outputs ``q(z | x) = N(mean, diag(exp(logvar)))``.
:class:`DiagonalGaussian` carries those two tensors, samples with the reparameterisation trick
(Kingma & Welling 2014, Sec. 2.4) and gives the KL to ``N(0, I)`` in closed form
(Kingma & Welling 2014, Appendix B).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

_LOG_2PI = math.log(2.0 * math.pi)


def log_density_gaussian(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """Elementwise log-density of ``N(mean, exp(logvar))`` at ``z`` (nats, no reduction).

    Args:
        z, mean, logvar: broadcastable tensors, e.g. ``[B, 1, D]`` against ``[1, B, D]``
            for the pairwise densities of the total-correlation estimators.

    Returns:
        ``log N(z; mean, exp(logvar))`` with the broadcast shape, one value per element.
    """
    return -0.5 * (_LOG_2PI + logvar + (z - mean).pow(2) * torch.exp(-logvar))


@dataclass
class DiagonalGaussian:
    """``N(mean, diag(exp(logvar)))`` over the last axis ``D``.

    Attributes:
        mean: ``[..., D]`` location.
        logvar: ``[..., D]`` log-variance (natural log), same shape as ``mean``.
    """

    mean: Tensor
    logvar: Tensor

    def __post_init__(self) -> None:
        if self.mean.shape != self.logvar.shape:
            raise ValueError(
                f"DiagonalGaussian: mean {tuple(self.mean.shape)} and logvar "
                f"{tuple(self.logvar.shape)} must have the same shape"
            )

    @property
    def std(self) -> Tensor:
        """``[..., D]`` standard deviation ``exp(logvar / 2)``."""
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> Tensor:
        """``[..., D]`` variance ``exp(logvar)``."""
        return torch.exp(self.logvar)

    @property
    def shape(self) -> torch.Size:
        return self.mean.shape

    def rsample(self, n: int | None = None) -> Tensor:
        """Reparameterised sample ``mean + std * eps``, ``eps ~ N(0, I)``; gradients flow.

        Args:
            n: number of samples; ``None`` draws one sample without a sample axis.

        Returns:
            ``[..., D]`` if ``n`` is None, else ``[n, ..., D]``.
        """
        shape = self.mean.shape if n is None else (n, *self.mean.shape)
        eps = torch.randn(shape, dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + self.std * eps  # broadcast over the leading sample axis

    def sample(self, n: int | None = None) -> Tensor:
        """Like :meth:`rsample` but detached from the graph."""
        with torch.no_grad():
            return self.rsample(n)

    def log_prob(self, z: Tensor) -> Tensor:
        """``log q(z)`` summed over ``D`` (nats).

        Args:
            z: ``[..., D]`` or ``[n, ..., D]`` (broadcast against the parameters).

        Returns:
            ``[...]`` (or ``[n, ...]``).
        """
        return log_density_gaussian(z, self.mean, self.logvar).sum(-1)

    def kl_per_dim(self) -> Tensor:
        """Closed-form ``KL(q || N(0, I))`` per latent dimension, ``[..., D]`` (nats).

        ``½ (μ² + σ² − log σ² − 1)`` (Kingma & Welling 2014, Appendix B).
        """
        return 0.5 * (self.mean.pow(2) + torch.exp(self.logvar) - self.logvar - 1.0)

    def kl(self) -> Tensor:
        """Closed-form ``KL(q || N(0, I))`` summed over ``D``, ``[...]`` (nats)."""
        return self.kl_per_dim().sum(-1)

    def detach(self) -> DiagonalGaussian:
        return DiagonalGaussian(self.mean.detach(), self.logvar.detach())


def as_gaussian(posterior: DiagonalGaussian | tuple[Tensor, Tensor]) -> DiagonalGaussian:
    """Accept an encoder output given as a :class:`DiagonalGaussian` or ``(mean, logvar)``."""
    if isinstance(posterior, DiagonalGaussian):
        return posterior
    if isinstance(posterior, (tuple, list)) and len(posterior) == 2:
        return DiagonalGaussian(posterior[0], posterior[1])
    raise TypeError(
        "encoder must return a DiagonalGaussian or a (mean, logvar) pair, got "
        f"{type(posterior).__name__}"
    )
