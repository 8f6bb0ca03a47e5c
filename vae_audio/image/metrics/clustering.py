"""Clustering accuracy of discrete assignments against a ground-truth factor.

Components carry arbitrary indices, so the score matches them to the classes first: the
one-to-one map maximising the number of agreeing images, found by the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment` on the ``[K, C]`` contingency table), as in
the unsupervised clustering accuracy of VaDE (Jiang et al. 2017, Eq. (22)). With more
components than classes the unmatched components count as errors; ``purity`` maps every
component to its majority class instead (many-to-one, never below ``accuracy``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from vae_audio.errors import VaeAudioError


@dataclass
class ClusteringScore:
    """``accuracy`` (one-to-one Hungarian match) and ``purity`` (majority map) in ``[0, 1]``;
    ``mapping[k]`` the class matched to component ``k`` (−1: none); ``num_images``."""

    accuracy: float
    purity: float
    mapping: list[int]
    num_images: int

    def as_dict(self) -> dict:
        return asdict(self)


def contingency(assigned: np.ndarray, truth: np.ndarray, num_components: int, num_classes: int):
    """``[K, C]`` counts of images with component ``k`` and class ``c``."""
    table = np.zeros((num_components, num_classes), dtype=np.int64)
    np.add.at(table, (assigned, truth), 1)
    return table


def clustering_accuracy(
    assigned: np.ndarray, truth: np.ndarray, num_components: int | None = None
) -> ClusteringScore:
    """Score component assignments ``[N]`` against class labels ``[N]`` (both ints ≥ 0).

    Args:
        assigned: the component of each image, in ``[0, K)``.
        truth: the class of each image, in ``[0, C)``.
        num_components: ``K`` (default: ``max(assigned) + 1``).
    """
    assigned = np.asarray(assigned, dtype=np.int64).reshape(-1)
    truth = np.asarray(truth, dtype=np.int64).reshape(-1)
    if assigned.shape != truth.shape or assigned.size == 0:
        raise VaeAudioError(
            f"clustering accuracy needs as many assignments as labels (got {assigned.size} "
            f"and {truth.size}), at least one"
        )
    k = int(num_components or assigned.max() + 1)
    table = contingency(assigned, truth, k, int(truth.max()) + 1)  # [K, C]
    rows, cols = linear_sum_assignment(-table)  # maximise the matched counts
    mapping = np.full(k, -1, dtype=np.int64)
    mapping[rows] = cols
    n = assigned.size
    return ClusteringScore(
        accuracy=float(table[rows, cols].sum() / n),
        purity=float(table.max(1).sum() / n),
        mapping=mapping.tolist(),
        num_images=n,
    )
