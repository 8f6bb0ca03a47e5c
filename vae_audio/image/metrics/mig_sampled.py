"""Chen et al.'s sample-based MIG (Chen et al. 2018, Sec. 5 and Eq. (6)): ``chen_mig``.

Unlike :mod:`~vae_audio.image.metrics.mig`, no histogram is used: the marginal
``q(z_d) = E_{p(x)} q(z_d | x)`` of each latent is the mixture of the encoder's Gaussian
posteriors, and entropies are Monte-Carlo estimates

``H(z_d) ≈ −(1/M) Σ_m log (1/M) Σ_n q(z_d^(m) | x_n)``,  ``z^(m) ~ q(z | x_m)``,

over a set of ``M`` points. The conditional entropy ``H(z_d | v_k)`` averages the same
estimate over sets that share factor ``k`` (one set per value, uniform over values), and
``I(z_d; v_k) = H(z_d) − H(z_d | v_k)`` (clamped at 0, nats). The gap of the two largest
``I`` over ``d`` is divided by ``H(v_k) = log(#values)`` (uniform factors) and averaged over
factors, in ``[0, 1]``.

Chen et al. mix over the whole data set; here every set (marginal and conditional) has the
same size ``num_points`` so that the finite-mixture bias, which includes each point's own
posterior, is the same on both sides of the difference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from vae_audio.errors import VaeAudioError
from vae_audio.image.datasets.ground_truth import GroundTruthData
from vae_audio.image.metrics._sampling import MetricScore, check_counts, mig_gap

PosteriorFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class SampledMIGScore(MetricScore):
    """MIG (fraction in [0, 1]) and the estimated mutual information ``[D, K]`` (nats)."""

    mig: float
    mutual_info: np.ndarray
    marginal_entropy: np.ndarray


def mixture_entropy(
    mean: torch.Tensor,
    logvar: torch.Tensor,
    generator: torch.Generator | None = None,
    chunk: int = 256,
) -> torch.Tensor:
    """Per-dimension entropy of the mixture ``(1/M) Σ_n N(mean_n, exp(logvar_n))`` (nats).

    One sample ``z_m ~ N(mean_m, exp(logvar_m))`` per component is the Monte-Carlo point.

    Args:
        mean, logvar: ``[M, D]`` posterior parameters (CPU tensors when ``generator`` is set).
        generator: random generator of the Monte-Carlo draws.

    Returns:
        ``[D]`` entropy estimates.
    """
    m = mean.shape[0]
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    z = mean + torch.exp(0.5 * logvar) * eps  # [M, D]
    total = torch.zeros(mean.shape[1], dtype=mean.dtype, device=mean.device)
    for start in range(0, m, chunk):
        zs = z[start : start + chunk, None, :]  # [m, 1, D]
        log_q = -0.5 * (
            math.log(2 * math.pi) + logvar[None] + (zs - mean[None]) ** 2 * torch.exp(-logvar[None])
        )  # [m, M, D]: log q(z_m,d | x_n)
        log_mix = torch.logsumexp(log_q, dim=1) - math.log(m)  # [m, D]
        total -= log_mix.sum(0)
    return total / m


def compute_chen_mig(
    data: GroundTruthData,
    posterior_fn: PosteriorFn,
    random_state: np.random.RandomState,
    num_points: int = 1000,
    max_values_per_factor: int | None = None,
    batch_size: int = 256,
) -> SampledMIGScore:
    """Sample-based MIG of an encoder on ``data``.

    Args:
        data: ground-truth data with uniform discrete factors.
        posterior_fn: ``[B, ...] observations -> (mean [B, D], logvar [B, D])``.
        random_state: NumPy random state (factors; also seeds the latent draws).
        num_points: points per mixture (marginal and each conditional set).
        max_values_per_factor: average ``H(z | v_k = v)`` over at most this many values of
            each factor (chosen at random, evenly weighted); ``None`` uses every value.
        batch_size: encoder batch size.
    """
    check_counts(num_points=num_points, batch_size=batch_size)
    gen = torch.Generator().manual_seed(int(random_state.randint(2**31)))

    def encode(factors):
        return _encode(data, posterior_fn, factors, random_state, batch_size)

    marginal = mixture_entropy(*encode(data.sample_factors(num_points, random_state)), gen)  # [D]
    sizes = data.factors_num_values
    mi = np.zeros((marginal.shape[0], len(sizes)))
    for k, n_values in enumerate(sizes):
        values = np.arange(n_values)
        if max_values_per_factor is not None and n_values > max_values_per_factor:
            values = random_state.choice(n_values, max_values_per_factor, replace=False)
        cond = torch.zeros_like(marginal)
        for v in values:
            factors = data.sample_factors(num_points, random_state)
            factors[:, k] = v
            cond += mixture_entropy(*encode(factors), gen) / len(values)
        mi[:, k] = (marginal - cond).clamp_min(0.0).numpy()
    entropy = np.log(np.maximum(np.asarray(sizes, dtype=np.float64), 2.0))  # [K]: H(v_k), nats
    return SampledMIGScore(mig_gap(mi, entropy), mi, marginal.numpy())


def _encode(data, posterior_fn, factors, random_state, batch_size):
    """Posterior parameters ``([N, D], [N, D])`` float64 of the observations of ``factors``."""
    means, logvars = [], []
    for start in range(0, len(factors), batch_size):
        x = data.sample_observations_from_factors(factors[start : start + batch_size], random_state)
        mean, logvar = posterior_fn(x)
        means.append(np.asarray(mean, dtype=np.float64))
        logvars.append(np.asarray(logvar, dtype=np.float64))
    mean, logvar = np.concatenate(means), np.concatenate(logvars)
    if mean.shape != logvar.shape or mean.ndim != 2:
        raise VaeAudioError(
            f"posterior function returned mean {mean.shape} and logvar {logvar.shape}; "
            "it must return two [B, D] arrays"
        )
    return torch.from_numpy(mean), torch.from_numpy(logvar)
