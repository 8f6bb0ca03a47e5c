"""Disentanglement, Completeness, Informativeness (Eastwood & Williams 2018, Sec. 2).

A classifier per factor predicts factor ``k`` from the code; its feature importances fill
column ``k`` of the importance matrix ``R`` ``[D, K]``.

- Disentanglement: ``Σ_d ρ_d (1 − H_K(P_d·))`` with ``P_dk = R_dk / Σ_k R_dk``, entropy in
  base ``K`` and weights ``ρ_d = Σ_k R_dk / Σ R`` (Eq. (1)-(2)).
- Completeness: ``Σ_k ρ_k (1 − H_D(P̃_·k))`` with ``P̃_dk = R_dk / Σ_d R_dk`` (Eq. (3)).
- Informativeness: prediction accuracy on train / test points (the library's choice; the
  paper uses an error).

All three are fractions in ``[0, 1]``. ``importance="gbt"`` is disentanglement_lib's
``GradientBoostingClassifier()`` with sklearn defaults (100 trees per class); it is slow for
factors with many values. ``importance="random_forest"`` (50 bagged trees of depth 8 that
consider every code at each split, impurity importances) is a much faster stand-in that
ranks codes the same way on clean cases; scores from the two are not interchangeable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

from vae_audio.errors import VaeAudioError
from vae_audio.image.datasets.ground_truth import GroundTruthData
from vae_audio.image.metrics._sampling import (
    RepresentationFn,
    check_counts,
    generate_batch_factor_code,
)


@dataclass
class DCIScore:
    """DCI scores (fractions in [0, 1]) and the importance matrix ``[D, K]``."""

    disentanglement: float
    completeness: float
    informativeness_train: float
    informativeness_test: float
    importance: np.ndarray

    def as_dict(self) -> dict:
        out = {k: v for k, v in vars(self).items() if k != "importance"}
        out["importance"] = self.importance.tolist()
        return out


def disentanglement(importance: np.ndarray) -> float:
    """Weighted ``1 − H_K`` over code dimensions of ``[D, K]`` importances (Eq. (1)-(2))."""
    per_code = 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=importance.shape[1])  # [D]
    if importance.sum() == 0.0:
        importance = np.ones_like(importance)
    weight = importance.sum(axis=1) / importance.sum()  # [D]
    return float(np.sum(per_code * weight))


def completeness(importance: np.ndarray) -> float:
    """Weighted ``1 − H_D`` over factors of ``[D, K]`` importances (Eq. (3))."""
    per_factor = 1.0 - scipy.stats.entropy(importance + 1e-11, base=importance.shape[0])  # [K]
    if importance.sum() == 0.0:
        importance = np.ones_like(importance)
    weight = importance.sum(axis=0) / importance.sum()  # [K]
    return float(np.sum(per_factor * weight))


def _classifier(importance: str, random_state: np.random.RandomState):
    if importance == "gbt":
        return GradientBoostingClassifier(random_state=random_state)
    if importance == "random_forest":
        return RandomForestClassifier(
            n_estimators=50, max_depth=8, max_features=None, random_state=random_state, n_jobs=1
        )
    raise VaeAudioError(f"DCI importance model {importance!r} unknown; use gbt or random_forest")


def dci_from_codes(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    random_state: np.random.RandomState,
    importance: str = "gbt",
) -> DCIScore:
    """DCI from codes ``[D, N]`` and factors ``[K, N]`` (train and test splits)."""
    num_codes, num_factors = codes_train.shape[0], factors_train.shape[0]
    r = np.zeros((num_codes, num_factors))
    train_acc, test_acc = [], []
    for k in range(num_factors):
        model = _classifier(importance, random_state)
        model.fit(codes_train.T, factors_train[k])
        r[:, k] = np.abs(model.feature_importances_)
        train_acc.append(np.mean(model.predict(codes_train.T) == factors_train[k]))
        test_acc.append(np.mean(model.predict(codes_test.T) == factors_test[k]))
    return DCIScore(
        disentanglement(r), completeness(r), float(np.mean(train_acc)), float(np.mean(test_acc)), r
    )


def compute_dci(
    data: GroundTruthData,
    representation_fn: RepresentationFn,
    random_state: np.random.RandomState,
    num_train: int = 10000,
    num_test: int = 5000,
    batch_size: int = 16,
    importance: str = "gbt",
) -> DCIScore:
    """DCI of ``representation_fn`` (``[B, ...] -> [B, D]``) on ``data``."""
    check_counts(num_train=num_train, num_test=num_test, batch_size=batch_size)
    train = generate_batch_factor_code(data, representation_fn, num_train, random_state, batch_size)
    test = generate_batch_factor_code(data, representation_fn, num_test, random_state, batch_size)
    return dci_from_codes(*train, *test, random_state=random_state, importance=importance)
