"""Shared helpers of the disentanglement metrics (disentanglement_lib's ``utils.py``).

Conventions: codes are ``[D, N]`` (latent dims × points) and factors ``[K, N]`` (factors ×
points), as in the reference implementation, so the helpers read like their originals.
Mutual information and entropies are in nats (``sklearn.metrics.mutual_info_score``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import mutual_info_score

from vae_audio.errors import VaeAudioError
from vae_audio.image.datasets.ground_truth import GroundTruthData

RepresentationFn = Callable[[np.ndarray], np.ndarray]


class MetricScore:
    """Mixin of the metric result dataclasses: ``as_dict()`` with arrays as nested lists."""

    def as_dict(self) -> dict:
        return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in vars(self).items()}


def represent(representation_fn: RepresentationFn, observations: np.ndarray) -> np.ndarray:
    """``[B, ...]`` observations -> ``[B, D]`` float64 codes, with a shape check."""
    codes = np.asarray(representation_fn(observations), dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] != len(observations):
        raise VaeAudioError(
            f"representation function returned shape {codes.shape} for {len(observations)} "
            "observations; it must return one code vector per observation, [B, D]"
        )
    return codes


def represent_factors(
    data: GroundTruthData,
    representation_fn: RepresentationFn,
    factors: np.ndarray,
    random_state: np.random.RandomState,
) -> np.ndarray:
    """Codes ``[B, D]`` of observations drawn for the factor vectors ``[B, K]``."""
    observations = data.sample_observations_from_factors(factors, random_state)  # [B, ...]
    return represent(representation_fn, observations)


def generate_batch_factor_code(
    data: GroundTruthData,
    representation_fn: RepresentationFn,
    num_points: int,
    random_state: np.random.RandomState,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``num_points`` i.i.d. points: codes ``[D, N]`` and their factors ``[K, N]``."""
    codes, factors = [], []
    done = 0
    while done < num_points:
        n = min(num_points - done, batch_size)
        f, x = data.sample(n, random_state)
        factors.append(f)
        codes.append(represent(representation_fn, x))
        done += n
    return np.concatenate(codes).T, np.concatenate(factors).T  # [D, N], [K, N]


def histogram_discretise(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Discretise each row of ``[D, N]`` codes into ``num_bins`` equal-width bins (int)."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for i, row in enumerate(codes):
        edges = np.histogram(row, num_bins)[1][:-1]  # left edges of the bins
        out[i] = np.digitize(row, edges)
    return out


def discrete_mutual_info(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Mutual information ``[D, K]`` (nats) of discrete codes ``[D, N]`` and factors ``[K, N]``."""
    m = np.zeros((codes.shape[0], factors.shape[0]))
    for d in range(codes.shape[0]):
        for k in range(factors.shape[0]):
            m[d, k] = mutual_info_score(factors[k], codes[d])
    return m


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Empirical entropy ``H(factor_k)`` in nats of ``[K, N]`` discrete factors: ``[K]``."""
    return np.array([mutual_info_score(f, f) for f in factors])


def mig_gap(mutual_info: np.ndarray, normaliser: np.ndarray) -> float:
    """MIG (Chen et al. 2018, Eq. (6)) from mutual information ``[D, K]`` (nats).

    For each factor, the gap between the largest and second-largest ``I(z_d; v_k)`` over ``d``
    (second-largest 0 when ``D = 1``) is divided by ``normaliser[k]`` (the factor's entropy,
    nats, ``[K]``); the result is the mean over factors.
    """
    top = np.sort(mutual_info, axis=0)[::-1]  # [D, K], descending over D
    second = top[1] if len(top) > 1 else np.zeros_like(top[0])  # [K]
    return float(np.mean((top[0] - second) / normaliser))


def check_counts(**counts: int) -> None:
    """Raise ``VaeAudioError`` unless every named count is a positive integer."""
    for name, value in counts.items():
        if int(value) < 1:
            raise VaeAudioError(f"metric parameter {name}={value} must be a positive integer")
