"""β-VAE disentanglement metric (Higgins et al. 2017, Sec. 3), disentanglement_lib protocol.

One training point: pick a factor ``k`` uniformly, draw two batches of ``batch_size`` factor
vectors that share factor ``k``, encode both, and take the mean absolute difference of the
codes over the batch, ``[D]``. A linear classifier (logistic regression) predicts ``k`` from
that vector; the score is its accuracy (fraction in ``[0, 1]``; chance ``1 / K``).

Defaults follow disentanglement_lib's study configs: ``batch_size=64``, ``num_train=10000``,
``num_eval=5000``. ``LogisticRegression`` runs with ``max_iter=1000`` (the library's
default of 100 iterations often stops before convergence on raw codes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from vae_audio.image.datasets.ground_truth import GroundTruthData
from vae_audio.image.metrics._sampling import (
    MetricScore,
    RepresentationFn,
    check_counts,
    represent_factors,
)


@dataclass
class BetaVAEScore(MetricScore):
    """Classifier accuracies (fractions in [0, 1])."""

    train_accuracy: float
    eval_accuracy: float


def compute_beta_vae(
    data: GroundTruthData,
    representation_fn: RepresentationFn,
    random_state: np.random.RandomState,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
) -> BetaVAEScore:
    """β-VAE metric of ``representation_fn`` (``[B, ...] -> [B, D]``) on ``data``."""
    check_counts(batch_size=batch_size, num_train=num_train, num_eval=num_eval)
    x_train, y_train = _points(data, representation_fn, batch_size, num_train, random_state)
    model = LogisticRegression(random_state=random_state, max_iter=1000)
    model.fit(x_train, y_train)
    train_acc = float(np.mean(model.predict(x_train) == y_train))
    x_eval, y_eval = _points(data, representation_fn, batch_size, num_eval, random_state)
    return BetaVAEScore(train_acc, float(model.score(x_eval, y_eval)))


def _points(data, representation_fn, batch_size, num_points, random_state):
    """``num_points`` feature vectors ``[N, D]`` and fixed-factor labels ``[N]``."""
    features, labels = [], np.zeros(num_points, dtype=np.int64)
    for i in range(num_points):
        k = random_state.randint(data.num_factors)
        f1 = data.sample_factors(batch_size, random_state)
        f2 = data.sample_factors(batch_size, random_state)
        f2[:, k] = f1[:, k]  # both batches share factor k pairwise
        z1 = represent_factors(data, representation_fn, f1, random_state)  # [B, D]
        z2 = represent_factors(data, representation_fn, f2, random_state)  # [B, D]
        labels[i] = k
        features.append(np.mean(np.abs(z1 - z2), axis=0))  # [D]
    return np.stack(features), labels
