"""Regularisers of the VAE objective: β, capacity, total correlation, MMD.

All functions are pure; each docstring states its reduction. KL values are in nats.

- :func:`beta_kl`: ``β · KL`` (Higgins et al. 2017, Eq. (4)).
- :func:`capacity_kl`: ``γ |KL − C|`` (Burgess et al. 2018, Eq. (8)).
- :func:`tc_decomposition`, :func:`total_correlation`: the ELBO's KL split into index-code
  mutual information, total correlation and dimension-wise KL (Chen et al. 2018, Eq. (2)),
  estimated on a minibatch by minibatch-weighted sampling (MWS, Sec. 4.1) or
  minibatch-stratified sampling (MSS, appendix).
- :func:`mmd`: maximum mean discrepancy between codes and prior samples (InfoVAE, Zhao et al.
  2019, Eq. (9); kernels as in WAE, Tolstikhin et al. 2018).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from vae_audio.core.distributions import DiagonalGaussian, log_density_gaussian


def beta_kl(kl: Tensor, beta: float | Tensor) -> Tensor:
    """``β · KL``, same shape as ``kl`` (no reduction)."""
    return beta * kl


def capacity_kl(kl: Tensor, capacity: float | Tensor, gamma: float | Tensor) -> Tensor:
    """``γ |KL − C|`` (Burgess et al. 2018, Eq. (8)), same shape as ``kl`` (no reduction).

    The paper applies it to the batch-mean KL (summed over D), so pass a scalar
    ``kl.mean()`` to follow it; ``C`` usually grows with :func:`schedules.linear_warmup`.
    """
    return gamma * (kl - capacity).abs()


class TCDecomposition(NamedTuple):
    """Per-example terms of ``E_x KL(q(z|x) ‖ p(z))`` (Chen et al. 2018, Eq. (2)), ``[B]`` each.

    ``mutual_info = log q(z|x) − log q(z)``, ``total_correlation = log q(z) − Σ_d log q(z_d)``,
    ``dimwise_kl = Σ_d log q(z_d) − log p(z)``, evaluated at ``z ~ q(z|x)``; the three sum to
    the one-sample KL estimate ``log q(z|x) − log p(z)`` whatever the estimator. Average over
    B for the expectations.
    """

    mutual_info: Tensor
    total_correlation: Tensor
    dimwise_kl: Tensor


def tc_decomposition(
    z: Tensor,
    posterior: DiagonalGaussian,
    dataset_size: int,
    estimator: str = "mss",
) -> TCDecomposition:
    """β-TCVAE decomposition of the KL term on one minibatch (Chen et al. 2018).

    ``q(z) = (1/N) Σ_n q(z | n)`` is the aggregate posterior over a dataset of ``N`` examples;
    ``log q(z_i)`` and ``log q(z_id)`` are estimated from the ``B`` posteriors of the batch:

    - ``"mws"`` (Sec. 4.1): ``log q(z_i) ≈ log Σ_j q(z_i | n_j) − log(NB)``.
      The paper's estimator, kept as published. It is biased: when the batch posteriors
      overlap, ``log q̂(z)`` is low by about ``log N`` for the joint and for each marginal, so
      its mutual information is high by ``log N``, its total correlation high by
      ``(D − 1) log N`` and its dimension-wise KL low by ``D log N``. The offsets are
      constants, so gradients are unaffected; log ``"mss"`` values when the numbers matter.
    - ``"mss"`` (appendix, minibatch stratified sampling): ``q̂(z_i) = Σ_j w_ij q(z_i | n_j)``
      with ``w_ii = 1/N``, one other weight ``(N − B + 1) / (N (B − 1))`` and the rest
      ``1/(B − 1)``; each row sums to 1 and ``q̂`` is unbiased for a batch drawn uniformly
      without replacement.

    Args:
        z: ``[B, D]`` one sample per example, ``z_i ~ q(z | x_i)``.
        posterior: ``q(z | x)`` with ``[B, D]`` parameters.
        dataset_size: ``N``, number of training examples (``N ≥ B``).
        estimator: ``"mss"`` or ``"mws"``.

    Returns:
        :class:`TCDecomposition`, each ``[B]`` in nats (no reduction over B).
    """
    if z.dim() != 2 or posterior.mean.shape != z.shape:
        raise ValueError(
            f"tc_decomposition expects z [B, D] and posterior parameters of the same shape, "
            f"got {tuple(z.shape)} and {tuple(posterior.mean.shape)}"
        )
    batch = z.shape[0]
    if batch < 2 or dataset_size < batch:
        raise ValueError(f"need 2 <= batch ({batch}) <= dataset_size ({dataset_size})")
    # log q(z_i,d | n_j) for all pairs: [B, 1, D] against [1, B, D] -> [B, B, D]
    pairwise = log_density_gaussian(
        z.unsqueeze(1), posterior.mean.unsqueeze(0), posterior.logvar.unsqueeze(0)
    )
    if estimator == "mws":
        offset = math.log(batch * dataset_size)
        log_qz = torch.logsumexp(pairwise.sum(2), dim=1) - offset  # [B]
        log_qz_marginals = (torch.logsumexp(pairwise, dim=1) - offset).sum(1)  # [B]
    elif estimator == "mss":
        log_w = _log_mss_weights(batch, dataset_size, z)  # [B, B]
        log_qz = torch.logsumexp(log_w + pairwise.sum(2), dim=1)  # [B]
        log_qz_marginals = torch.logsumexp(log_w.unsqueeze(2) + pairwise, dim=1).sum(1)  # [B]
    else:
        raise ValueError(f"unknown TC estimator {estimator!r}; use 'mss' or 'mws'")
    log_qz_given_x = torch.diagonal(pairwise).sum(0)  # diag of [B, B, D] -> [D, B] -> [B]
    log_pz = log_density_gaussian(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)  # [B]
    return TCDecomposition(
        mutual_info=log_qz_given_x - log_qz,
        total_correlation=log_qz - log_qz_marginals,
        dimwise_kl=log_qz_marginals - log_pz,
    )


def total_correlation(
    z: Tensor, posterior: DiagonalGaussian, dataset_size: int, estimator: str = "mss"
) -> Tensor:
    """Per-example total-correlation estimate ``log q(z) − Σ_d log q(z_d)``, ``[B]`` (nats).

    See :func:`tc_decomposition` for the estimators and their biases; average over B.
    """
    return tc_decomposition(z, posterior, dataset_size, estimator).total_correlation


def _log_mss_weights(batch: int, dataset_size: int, like: Tensor) -> Tensor:
    """``[B, B]`` log importance weights of minibatch-stratified sampling.

    Row ``i`` estimates ``q(z_i)``: its own posterior (the diagonal) has weight ``1/N``, the
    next example in the batch (cyclically) carries the stratum weight ``(N − M)/(N M)`` with
    ``M = B − 1``, the other ``M − 1`` examples ``1/M`` each (Chen et al. 2018, appendix).
    Each row sums to 1. A widely copied construction of this matrix (strided writes into
    ``W.view(-1)``) puts the ``1/N`` weights in column 0 instead of on the diagonal, which
    biases ``q̂`` of most rows (by up to 30 % in a 4-of-12 batch).
    """
    n, m = float(dataset_size), float(batch - 1)
    weights = torch.full((batch, batch), 1.0 / m, dtype=like.dtype, device=like.device)
    rows = torch.arange(batch, device=like.device)
    weights[rows, (rows + 1) % batch] = (n - m) / (n * m)
    weights[rows, rows] = 1.0 / n
    return torch.log(weights)


def mmd(
    z: Tensor,
    z_prior: Tensor,
    kernel: str = "rbf",
    scales: tuple[float, ...] | None = None,
    unbiased: bool = True,
) -> Tensor:
    """Squared maximum mean discrepancy ``MMD²(q, p)`` from samples (Gretton et al. 2012, Eq. 3-5).

    ``MMD² = E k(z, z') + E k(y, y') − 2 E k(z, y)`` with ``z ~ q(z)``, ``y ~ p(z)``. The
    kernel is a sum over ``scales`` s (``C = 2 D s²``):

    - ``"rbf"``: ``exp(−‖a − b‖² / C)``; default scales ``(1.0,)``.
    - ``"imq"``: ``C / (C + ‖a − b‖²)`` (WAE, Tolstikhin et al. 2018, Sec. 4); default
      scales ``(0.1, 0.2, 0.5, 1, 2, 5, 10)``.

    Args:
        z: ``[B, D]`` codes (e.g. posterior samples, InfoVAE Eq. (9)).
        z_prior: ``[B', D]`` prior samples.
        unbiased: U-statistic (drops the ``i = j`` terms; can be slightly negative) if True,
            else the biased V-statistic (≥ 0).

    Returns:
        Scalar ``MMD²`` (a batch statistic, no per-example values).
    """
    if z.dim() != 2 or z_prior.dim() != 2 or z.shape[1] != z_prior.shape[1]:
        raise ValueError(f"mmd expects [B, D] inputs, got {tuple(z.shape)}, {tuple(z_prior.shape)}")
    if scales is None:
        scales = (1.0,) if kernel == "rbf" else (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
    dim = z.shape[1]
    k_zz = _kernel(z, z, kernel, scales, dim)  # [B, B]
    k_pp = _kernel(z_prior, z_prior, kernel, scales, dim)  # [B', B']
    k_zp = _kernel(z, z_prior, kernel, scales, dim)  # [B, B']
    if unbiased:
        b, bp = z.shape[0], z_prior.shape[0]
        if b < 2 or bp < 2:
            raise ValueError("the unbiased MMD estimator needs at least 2 samples on each side")
        term_zz = (k_zz.sum() - k_zz.diagonal().sum()) / (b * (b - 1))
        term_pp = (k_pp.sum() - k_pp.diagonal().sum()) / (bp * (bp - 1))
    else:
        term_zz, term_pp = k_zz.mean(), k_pp.mean()
    return term_zz + term_pp - 2.0 * k_zp.mean()


def _kernel(a: Tensor, b: Tensor, kernel: str, scales: tuple[float, ...], dim: int) -> Tensor:
    sq_dist = (
        (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1)
    )  # [B_a, 1, D] - [1, B_b, D] -> [B_a, B_b]
    out = torch.zeros_like(sq_dist)
    for scale in scales:
        c = 2.0 * dim * scale**2
        if kernel == "rbf":
            out = out + torch.exp(-sq_dist / c)
        elif kernel == "imq":
            out = out + c / (c + sq_dist)
        else:
            raise ValueError(f"unknown MMD kernel {kernel!r}; use 'rbf' or 'imq'")
    return out
