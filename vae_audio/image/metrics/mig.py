"""Mutual Information Gap (Chen et al. 2018, Eq. (6)), disentanglement_lib's discrete estimator.

``num_train`` i.i.d. points are encoded; each code dimension is discretised into
``num_bins`` equal-width histogram bins (20 in the library's study), and the discrete mutual
information ``I(z_d; v_k)`` (nats) is computed against each factor. For each factor the gap
between the largest and second-largest ``I`` over dimensions is divided by the factor's
entropy ``H(v_k)``; MIG is the mean over factors, in ``[0, 1]``.

See :mod:`vae_audio.image.metrics.mig_sampled` for Chen et al.'s own sample-based estimator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vae_audio.image.datasets.ground_truth import GroundTruthData
from vae_audio.image.metrics._sampling import (
    MetricScore,
    RepresentationFn,
    check_counts,
    discrete_entropy,
    discrete_mutual_info,
    generate_batch_factor_code,
    histogram_discretise,
    mig_gap,
)


@dataclass
class MIGScore(MetricScore):
    """MIG (fraction in [0, 1]), mutual information ``[D, K]``, factor entropies ``[K]`` (nats)."""

    mig: float
    mutual_info: np.ndarray
    factor_entropy: np.ndarray


def mig_from_codes(codes: np.ndarray, factors: np.ndarray, num_bins: int | None = 20) -> MIGScore:
    """MIG of codes ``[D, N]`` against discrete factors ``[K, N]``.

    ``num_bins=None`` skips the discretisation (codes already discrete).
    """
    if codes.shape[0] < 2:
        # A single code dimension has no second-best: the gap is the MI itself.
        codes = np.concatenate([codes, np.zeros_like(codes)])
    discrete = codes.astype(np.int64) if num_bins is None else histogram_discretise(codes, num_bins)
    mi = discrete_mutual_info(discrete, factors)  # [D, K]
    entropy = discrete_entropy(factors)  # [K]
    return MIGScore(mig_gap(mi, np.maximum(entropy, 1e-12)), mi, entropy)


def compute_mig(
    data: GroundTruthData,
    representation_fn: RepresentationFn,
    random_state: np.random.RandomState,
    num_train: int = 10000,
    batch_size: int = 16,
    num_bins: int = 20,
) -> MIGScore:
    """MIG of ``representation_fn`` (``[B, ...] -> [B, D]``) on ``data``."""
    check_counts(num_train=num_train, batch_size=batch_size, num_bins=num_bins)
    codes, factors = generate_batch_factor_code(
        data, representation_fn, num_train, random_state, batch_size
    )
    return mig_from_codes(codes, factors, num_bins)
