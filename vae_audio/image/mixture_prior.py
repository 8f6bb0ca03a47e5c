"""A learnable Gaussian-mixture prior ``p(z) = Σ_k π_k N(z; μ_k, diag σ_k²)``.

The prior of the mixture-prior VAE (as in Dilokthanakul et al. 2016 and VaDE, Jiang et al.
2017, there with its own inference network; here the mixture is only the prior and the KL is
estimated by Monte Carlo, as for the VampPrior, Tomczak & Welling 2018, Eq. (5)):

``KL(q(z|x) ‖ p(z)) ≈ log q(z|x) − log p(z)``,  ``z ~ q(z|x)`` (reparameterised).

Pure functions of tensors first; :class:`MixturePrior` holds the learnable parameters
(mixing logits ``[K]``, means ``[K, D]``, log-variances ``[K, D]``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vae_audio.core.distributions import log_density_gaussian


def component_log_prob(z: Tensor, means: Tensor, logvars: Tensor) -> Tensor:
    """``log N(z; μ_k, diag σ_k²)`` for every component: ``z [..., D]`` -> ``[..., K]`` (nats)."""
    return log_density_gaussian(z[..., None, :], means, logvars).sum(-1)  # [..., K, D] -> [..., K]


def mixture_log_prob(z: Tensor, logits: Tensor, means: Tensor, logvars: Tensor) -> Tensor:
    """``log Σ_k π_k N(z; μ_k, diag σ_k²)`` with ``π = softmax(logits)``: ``[..., D] -> [...]``.

    Args:
        z: ``[..., D]`` points.
        logits: ``[K]`` unnormalised mixing log-weights.
        means, logvars: ``[K, D]``.
    """
    joint = torch.log_softmax(logits, -1) + component_log_prob(z, means, logvars)  # [..., K]
    return torch.logsumexp(joint, -1)


def log_responsibilities(z: Tensor, logits: Tensor, means: Tensor, logvars: Tensor) -> Tensor:
    """``log p(k | z)`` for every component, ``[..., D] -> [..., K]`` (rows normalised)."""
    joint = torch.log_softmax(logits, -1) + component_log_prob(z, means, logvars)  # [..., K]
    return joint - torch.logsumexp(joint, -1, keepdim=True)


class MixturePrior(nn.Module):
    """Learnable ``K``-component diagonal Gaussian mixture over ``D`` dimensions.

    Args:
        num_components: ``K``.
        latent_dim: ``D``.
        init_spread: the means start at ``init_spread · N(0, I)`` draws (distinct components);
            variances start at 1 and the weights uniform.
    """

    def __init__(self, num_components: int, latent_dim: int, init_spread: float = 1.0) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_components))
        self.means = nn.Parameter(init_spread * torch.randn(num_components, latent_dim))
        self.logvars = nn.Parameter(torch.zeros(num_components, latent_dim))

    @property
    def num_components(self) -> int:
        return self.logits.shape[0]

    def log_prob(self, z: Tensor) -> Tensor:
        """``log p(z)``, ``[..., D] -> [...]`` (nats)."""
        return mixture_log_prob(z, self.logits, self.means, self.logvars)

    def log_responsibilities(self, z: Tensor) -> Tensor:
        """``log p(k | z)``, ``[..., D] -> [..., K]``."""
        return log_responsibilities(z, self.logits, self.means, self.logvars)

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, component: int | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(z [n, D], k [n])``: ancestral draws (``k ~ π``, then ``z ~ N(μ_k, σ_k²)``).

        Draws come from ``generator`` on the CPU; ``component`` fixes ``k``.
        """
        device = self.means.device
        if component is None:
            probs = torch.softmax(self.logits.detach().float().cpu(), -1)
            k = torch.multinomial(probs, n, replacement=True, generator=generator)  # [n]
        else:
            k = torch.full((n,), int(component), dtype=torch.long)
        eps = torch.randn(n, self.means.shape[1], generator=generator).to(device)  # [n, D]
        k = k.to(device)
        z = self.means[k] + torch.exp(0.5 * self.logvars[k]) * eps  # [n, D]
        return z, k
