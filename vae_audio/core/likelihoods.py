"""Decoder likelihoods as negative log-densities.

**Reduction convention (the whole module):** every function and every ``nll`` method returns
the negative log-likelihood *elementwise*, in nats, with the broadcast shape of its inputs.
Callers reduce (``VAE`` sums over the data axes of each example).

Functional forms:

- :func:`complex_gaussian_nll`: ``x ~ N_C(0, λ)`` observed through its power ``|x|²``;
  ``−log p(x) = log(π λ) + |x|² / λ`` (Bando et al. 2018, Eq. (2); Leglaive et al. 2018).
- :func:`is_divergence`: Itakura–Saito divergence ``p/λ − log(p/λ) − 1``, which equals the
  complex-Gaussian NLL minus ``log(π p) + 1`` (a term free of ``λ``; Févotte et al. 2009).
- :func:`gaussian_nll`: real Gaussian ``½ (log 2π + log σ² + (x − μ)² / σ²)``.
- :func:`bernoulli_nll`: Bernoulli with logits (binary cross-entropy with logits).

:class:`Likelihood` is the protocol :class:`vae_audio.core.vae.VAE` uses: ``nll(target,
decoded)`` (elementwise) and ``mean(decoded)`` (the expected observation, for plots).
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor

_LOG_PI = math.log(math.pi)
_LOG_2PI = math.log(2.0 * math.pi)


def complex_gaussian_nll(power: Tensor, psd: Tensor, eps: float = 1e-8) -> Tensor:
    """Elementwise ``−log N_C(x; 0, λ) = log(π λ) + |x|² / λ`` with ``λ = psd + eps`` (nats).

    Args:
        power: ``|x|²`` (real, ≥ 0), e.g. ``[B, F, T]``.
        psd: ``λ`` (real, > 0), broadcastable to ``power``.
        eps: floor added to ``psd`` against division by zero.

    Returns:
        Elementwise NLL, broadcast shape of ``power`` and ``psd``; no reduction.
    """
    lam = psd + eps
    return _LOG_PI + torch.log(lam) + power / lam


def is_divergence(power: Tensor, psd: Tensor, eps: float = 1e-8) -> Tensor:
    """Elementwise Itakura–Saito divergence ``d_IS(p | λ) = p/λ − log(p/λ) − 1`` (≥ 0).

    ``p = power + eps`` and ``λ = psd + eps``. Equals ``complex_gaussian_nll(p, λ) −
    log(π p) − 1``, so minimising either over ``λ`` is the same problem.

    Args:
        power: ``p = |x|²``, e.g. ``[B, F, T]``.
        psd: ``λ``, broadcastable to ``power``.

    Returns:
        Elementwise divergence, broadcast shape; no reduction.
    """
    ratio = (power + eps) / (psd + eps)
    return ratio - torch.log(ratio) - 1.0


def gaussian_nll(x: Tensor, mean: Tensor, logvar: Tensor | float = 0.0) -> Tensor:
    """Elementwise ``−log N(x; mean, exp(logvar)) = ½ (log 2π + logvar + (x − mean)² / σ²)``.

    Args:
        x, mean: broadcastable tensors, e.g. ``[B, C, H, W]``.
        logvar: log-variance, a tensor broadcastable to ``x`` or a float.

    Returns:
        Elementwise NLL in nats, broadcast shape; no reduction.
    """
    logvar = torch.as_tensor(logvar, dtype=mean.dtype, device=mean.device)
    return 0.5 * (_LOG_2PI + logvar + (x - mean).pow(2) * torch.exp(-logvar))


def bernoulli_nll(x: Tensor, logits: Tensor) -> Tensor:
    """Elementwise ``−log Bern(x; sigmoid(logits))`` (binary cross-entropy with logits).

    Computed as ``softplus(logits) − x · logits``, which is stable for large ``|logits|`` and
    broadcasts (unlike ``F.binary_cross_entropy_with_logits``).

    Args:
        x: targets in ``[0, 1]`` (binary, or grey levels treated as probabilities).
        logits: broadcastable to ``x``.

    Returns:
        Elementwise NLL in nats, broadcast shape; no reduction.
    """
    return F.softplus(logits) - x * logits


@runtime_checkable
class Likelihood(Protocol):
    """What a decoder's output means: ``p(target | decoded)``."""

    def nll(self, target: Tensor, decoded: Tensor) -> Tensor:
        """Elementwise NLL (nats), shape of ``target``; no reduction."""
        ...

    def mean(self, decoded: Tensor) -> Tensor:
        """Expected observation under ``p(· | decoded)``."""
        ...


class BernoulliLikelihood:
    """Decoder outputs logits; targets in ``[0, 1]``."""

    def nll(self, target: Tensor, decoded: Tensor) -> Tensor:
        return bernoulli_nll(target, decoded)

    def mean(self, decoded: Tensor) -> Tensor:
        return torch.sigmoid(decoded)


class GaussianLikelihood:
    """Decoder outputs the mean; the variance is fixed (``logvar``).

    For a learnt variance, let the decoder return the tuple ``(mean, logvar)`` and set
    ``learnt_variance=True``.
    """

    def __init__(self, logvar: float = 0.0, learnt_variance: bool = False) -> None:
        self.logvar = float(logvar)
        self.learnt_variance = learnt_variance

    def nll(self, target: Tensor, decoded: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        if self.learnt_variance:
            return gaussian_nll(target, decoded[0], decoded[1])
        return gaussian_nll(target, decoded, self.logvar)

    def mean(self, decoded: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        return decoded[0] if self.learnt_variance else decoded


class ComplexGaussianLikelihood:
    """Decoder outputs the PSD ``λ``; the target is a complex STFT or its power ``|x|²``.

    ``nll = log(π λ) + |x|² / λ`` elementwise (:func:`complex_gaussian_nll`).
    """

    def __init__(self, eps: float = 1e-8) -> None:
        self.eps = float(eps)

    def nll(self, target: Tensor, decoded: Tensor) -> Tensor:
        power = target.abs().pow(2) if target.is_complex() else target
        return complex_gaussian_nll(power, decoded, self.eps)

    def mean(self, decoded: Tensor) -> Tensor:
        """``E|x|² = λ``: the expected power."""
        return decoded


def build_likelihood(name: str, **kwargs) -> Likelihood:
    """Build a likelihood by name: ``bernoulli``, ``gaussian``, ``complex_gaussian``."""
    table = {
        "bernoulli": BernoulliLikelihood,
        "gaussian": GaussianLikelihood,
        "complex_gaussian": ComplexGaussianLikelihood,
    }
    if name not in table:
        from vae_audio.errors import VaeAudioError

        raise VaeAudioError(
            f"unknown likelihood {name!r}; use one of {sorted(table)} in the model config"
        )
    return table[name](**kwargs)
