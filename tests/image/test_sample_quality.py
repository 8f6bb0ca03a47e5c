"""Fréchet distance and k-NN precision/recall against closed forms and constructed sets."""

import numpy as np
import pytest
import scipy.linalg
import torch

from vae_audio.errors import VaeAudioError
from vae_audio.image.metrics import (
    frechet_distance,
    gaussian_frechet_distance,
    precision_recall,
)


def _points(n=400, f=5, seed=0):
    return np.random.RandomState(seed).randn(n, f) @ np.diag([1.0, 2.0, 0.5, 1.5, 1.0][:f])


def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_a_shift():
    x = _points()
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    direction = np.ones(5) / np.sqrt(5)
    previous = 0.0
    for shift in (0.5, 1.0, 2.0, 4.0):
        d = frechet_distance(x, x + shift * direction)
        # Same covariance: only ‖Δμ‖² remains.
        assert d == pytest.approx(shift**2, rel=1e-6)
        assert d > previous
        previous = d


def test_gaussian_frechet_distance_matches_closed_forms():
    # Diagonal covariances: d² = ‖μ₁ − μ₂‖² + Σ_i (σ₁ᵢ − σ₂ᵢ)².
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.0])
    s1, s2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 1.0, 0.5])
    expected = float((mu1 - mu2).pow(2).sum() + (s1 - s2).pow(2).sum())
    got = gaussian_frechet_distance(mu1, torch.diag(s1**2), mu2, torch.diag(s2**2))
    assert got == pytest.approx(expected, rel=1e-9)
    # Full covariances: against scipy's general (non-symmetric) matrix square root.
    rs = np.random.RandomState(1)
    a, b = rs.randn(6, 6), rs.randn(6, 6)
    c1, c2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    m1, m2 = rs.randn(6), rs.randn(6)
    ref = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    got = gaussian_frechet_distance(*map(torch.from_numpy, (m1, c1, m2, c2)))
    assert got == pytest.approx(ref, rel=1e-7)


def test_frechet_distance_of_samples_approaches_the_population_value():
    rs = np.random.RandomState(0)
    x = rs.randn(20000, 2)
    y = rs.randn(20000, 2) * np.array([2.0, 1.0]) + np.array([1.0, 0.0])
    # Population: ‖Δμ‖² = 1, (σ₁ − σ₂)² = 1 on the first axis, 0 on the second.
    assert frechet_distance(x, y) == pytest.approx(2.0, abs=0.1)


def test_precision_recall_on_identical_shifted_and_mode_dropping_sets():
    real = _points(600, 3)
    same = precision_recall(real, real, k=3)
    assert same.precision == 1.0 and same.recall == 1.0
    far = precision_recall(real, real + 100.0, k=3)
    assert far.precision == 0.0 and far.recall == 0.0
    # Samples from half of the data: realistic (high precision) but covering half (recall).
    fresh = _points(600, 3, seed=7)
    half = fresh[fresh[:, 0] > 0]
    dropped = precision_recall(real, half, k=3)
    assert dropped.precision > 0.9
    assert 0.3 < dropped.recall < 0.7
    # Symmetric roles: swapping the sets swaps precision and recall.
    swapped = precision_recall(half, real, k=3)
    assert swapped.precision == pytest.approx(dropped.recall)
    assert swapped.recall == pytest.approx(dropped.precision)


def test_bad_feature_arrays_are_user_errors():
    with pytest.raises(VaeAudioError, match="feature sizes"):
        precision_recall(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(VaeAudioError, match="k=5"):
        precision_recall(np.random.randn(5, 2), np.random.randn(5, 2), k=5)
