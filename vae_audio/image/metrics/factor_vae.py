"""FactorVAE disentanglement metric (Kim & Mnih 2018, Sec. 4), disentanglement_lib protocol.

Codes are divided by their global standard deviation (estimated on
``num_variance_estimate`` random points, ``ddof=1``); dimensions whose std is below
``prune_threshold`` count as collapsed and are ignored. One vote: pick a factor ``k``, draw
``batch_size`` points sharing factor ``k``, and find the active dimension ``d`` with the
smallest normalised variance. The classifier is the majority vote ``d -> k`` over
``num_train`` votes; the score is the fraction of votes (train) or of ``num_eval`` fresh
votes (eval) it gets right, in ``[0, 1]``.

Defaults follow disentanglement_lib's study configs: batch 64, ``num_train=10000``,
``num_eval=5000``, ``num_variance_estimate=10000``, ``prune_threshold=0.05``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vae_audio.image.datasets.ground_truth import GroundTruthData
from vae_audio.image.metrics._sampling import (
    MetricScore,
    RepresentationFn,
    check_counts,
    represent,
    represent_factors,
)


@dataclass
class FactorVAEScore(MetricScore):
    """Majority-vote accuracies (fractions in [0, 1]) and the number of active dimensions."""

    train_accuracy: float
    eval_accuracy: float
    num_active_dims: int


def compute_factor_vae(
    data: GroundTruthData,
    representation_fn: RepresentationFn,
    random_state: np.random.RandomState,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    prune_threshold: float = 0.05,
) -> FactorVAEScore:
    """FactorVAE metric of ``representation_fn`` (``[B, ...] -> [B, D]``) on ``data``."""
    check_counts(
        batch_size=batch_size,
        num_train=num_train,
        num_eval=num_eval,
        num_variance_estimate=num_variance_estimate,
    )
    codes = np.concatenate(
        [
            represent(representation_fn, data.sample_observations(n, random_state))
            for n in _chunks(num_variance_estimate, 64)
        ]
    )  # [N, D]
    global_var = np.var(codes, axis=0, ddof=1)  # [D]
    active = np.sqrt(global_var) >= prune_threshold  # [D]
    if not active.any():
        return FactorVAEScore(0.0, 0.0, 0)
    args = (data, representation_fn, batch_size, random_state, global_var, active)
    train_votes = _votes(*args, num_train)  # [K, D]
    classifier = np.argmax(train_votes, axis=0)  # [D]: factor predicted for each dim
    cols = np.arange(train_votes.shape[1])
    train_acc = train_votes[classifier, cols].sum() / train_votes.sum()
    eval_votes = _votes(*args, num_eval)
    eval_acc = eval_votes[classifier, cols].sum() / eval_votes.sum()
    return FactorVAEScore(float(train_acc), float(eval_acc), int(active.sum()))


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield min(size, total - start)


def _votes(data, representation_fn, batch_size, random_state, global_var, active, num_points):
    """Vote counts ``[K, D]``: how often dim ``d`` had the least variance with ``k`` fixed."""
    votes = np.zeros((data.num_factors, len(global_var)), dtype=np.int64)
    active_idx = np.flatnonzero(active)
    for _ in range(num_points):
        k = random_state.randint(data.num_factors)
        factors = data.sample_factors(batch_size, random_state)
        factors[:, k] = factors[0, k]
        codes = represent_factors(data, representation_fn, factors, random_state)  # [B, D]
        local_var = np.var(codes, axis=0, ddof=1)  # [D]
        d = active_idx[np.argmin(local_var[active] / global_var[active])]
        votes[k, d] += 1
    return votes
