"""Permutation solving: which estimate goes with which reference source.

A blind separator returns its N outputs in an arbitrary order, and often more outputs than
there are speakers (Neural FCA's noise slot, an over-estimated source count). Given a
``[K, N]`` matrix of pairwise scores (higher is better, e.g. the SDR or SI-SDR in dB of
estimate ``n`` against reference ``k``), the assignment maximising the mean score over the K
references is a linear assignment problem, solved exactly by the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`) in O(N^3) instead of the N! permutations
BSS Eval enumerates. With N > K the K best-matching estimates are kept; the others are
reported as dropped, never silently discarded.

Non-finite scores are handled so that the choice is still well defined: ``+inf`` (a perfect
estimate) is preferred over any finite score, ``-inf`` and NaN (e.g. a silent estimate)
over nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from vae_audio.errors import VaeAudioError


@dataclass(frozen=True)
class Assignment:
    """Result of :func:`solve_permutation`.

    ``perm[k]`` is the (0-based) estimate matched to reference ``k`` (``[K]`` ints);
    ``dropped`` lists, ascending, the estimates matched to no reference (``N - K`` of them);
    ``scores[k] = scores_matrix[k, perm[k]]`` (``[K]``, the criterion's unit, e.g. dB) and
    ``mean_score`` their mean (NaN if any matched score is NaN).
    """

    perm: np.ndarray
    dropped: tuple[int, ...]
    scores: np.ndarray
    mean_score: float


def _finite_costs(scores: np.ndarray) -> np.ndarray:
    """Map scores ``[K, N]`` to finite costs preserving the order of finite values.

    ``+inf`` becomes better than the best finite score, ``-inf``/NaN worse than the worst;
    the margin keeps any such pair from being traded against a finite difference.
    """
    finite = scores[np.isfinite(scores)]
    span = float(finite.max() - finite.min()) if finite.size else 0.0
    top = (float(finite.max()) if finite.size else 0.0) + span + 1.0
    bottom = (float(finite.min()) if finite.size else 0.0) - span - 1.0
    big = (top - bottom) * scores.size  # more than any sum of finite differences
    filled = np.where(np.isposinf(scores), top + big, scores)
    filled = np.where(np.isneginf(scores) | np.isnan(scores), bottom - big, filled)
    return -filled  # linear_sum_assignment minimises


def solve_permutation(scores: np.ndarray) -> Assignment:
    """Match K references to N >= K estimates maximising the mean of ``scores`` ``[K, N]``.

    Returns an :class:`Assignment`. Raises ``VaeAudioError`` when there are fewer
    estimates than references (N < K): some reference would have no estimate at all.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise VaeAudioError(
            f"permutation scores must be a non-empty [K, N] matrix, got shape {scores.shape}"
        )
    n_ref, n_est = scores.shape
    if n_est < n_ref:
        raise VaeAudioError(
            f"{n_est} estimate(s) for {n_ref} reference source(s): every reference needs an "
            "estimate; run the separator with at least as many output sources as speakers"
        )
    rows, cols = linear_sum_assignment(_finite_costs(scores))  # rows == arange(K)
    perm = np.empty(n_ref, dtype=np.int64)
    perm[rows] = cols
    dropped = tuple(sorted(set(range(n_est)) - set(perm.tolist())))
    matched = scores[np.arange(n_ref), perm]  # [K]
    return Assignment(perm=perm, dropped=dropped, scores=matched, mean_score=float(matched.mean()))
