"""Disentanglement metrics checked as disentanglement_lib checks them: identity codes score
near the top, constant codes near zero, duplicated or rotated codes low."""

import numpy as np
import pytest
import scipy.stats

from vae_audio.image.metrics import (
    completeness,
    compute_beta_vae,
    compute_chen_mig,
    compute_dci,
    compute_factor_vae,
    compute_mig,
    disentanglement,
)

from .toy_data import IdentityData


def identity(x):
    return np.asarray(x, dtype=np.float64)


def constant(x):
    return np.zeros_like(x, dtype=np.float64)


def duplicated(x):
    return np.hstack([identity(x), identity(x)])


def rotated(x):
    # A fixed random rotation mixes every factor into every code dimension.
    q, _ = np.linalg.qr(np.random.RandomState(123).randn(x.shape[1], x.shape[1]))
    return identity(x) @ q


def rs():
    return np.random.RandomState(0)


# --- β-VAE metric ----------------------------------------------------------------------------


def test_beta_vae_identity_is_near_perfect(identity_data):
    score = compute_beta_vae(
        identity_data, identity, rs(), batch_size=5, num_train=300, num_eval=200
    )
    assert score.train_accuracy > 0.9 and score.eval_accuracy > 0.9


def test_beta_vae_constant_code_is_at_chance(identity_data):
    score = compute_beta_vae(
        identity_data, constant, rs(), batch_size=5, num_train=300, num_eval=200
    )
    chance = 1.0 / identity_data.num_factors
    assert score.eval_accuracy < chance + 0.15


# --- FactorVAE metric ------------------------------------------------------------------------


def _factor_vae(data, fn):
    return compute_factor_vae(
        data, fn, rs(), batch_size=5, num_train=300, num_eval=200, num_variance_estimate=500
    )


def test_factor_vae_identity_is_near_perfect(identity_data):
    score = _factor_vae(identity_data, identity)
    assert score.train_accuracy > 0.9 and score.eval_accuracy > 0.9
    assert score.num_active_dims == identity_data.num_factors


def test_factor_vae_constant_code_scores_zero(identity_data):
    score = _factor_vae(identity_data, constant)
    assert score.eval_accuracy == 0.0 and score.num_active_dims == 0


def test_factor_vae_rotated_code_scores_lower(identity_data):
    assert _factor_vae(identity_data, rotated).eval_accuracy < 0.7


# --- MIG (histogram) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "low", "high"),
    [(identity, 0.9, 1.0), (constant, 0.0, 0.05), (duplicated, 0.0, 0.05), (rotated, 0.0, 0.3)],
    ids=["identity", "constant", "duplicated", "rotated"],
)
def test_mig(identity_data, fn, low, high):
    # 10 bins on 10-valued factors: the histogram discretisation is lossless for identity.
    score = compute_mig(identity_data, fn, rs(), num_train=2000, num_bins=10)
    assert low <= score.mig <= high


def test_mig_entropy_matches_uniform(identity_data):
    score = compute_mig(identity_data, identity, rs(), num_train=4000, num_bins=10)
    np.testing.assert_allclose(score.factor_entropy, np.log(10), rtol=0.01)


# --- Chen et al.'s sampled MIG -----------------------------------------------------------------


def _posterior(fn, std=0.2):
    def posterior(x):
        mean = fn(x)
        return mean, np.full_like(mean, 2 * np.log(std))

    return posterior


def _chen(data, fn):
    return compute_chen_mig(data, _posterior(fn), rs(), num_points=300, max_values_per_factor=4)


def test_chen_mig_identity_is_high(identity_data):
    score = _chen(identity_data, identity)
    assert score.mig > 0.8
    # Marginal of a 10-component mixture of narrow Gaussians at 0..9: H ≈ log 10 + H(N(0, σ²)).
    expected = np.log(10) + 0.5 * np.log(2 * np.pi * np.e * 0.2**2)
    np.testing.assert_allclose(score.marginal_entropy, expected, atol=0.15)


@pytest.mark.parametrize("fn", [duplicated, rotated], ids=["duplicated", "rotated"])
def test_chen_mig_entangled_is_low(identity_data, fn):
    assert _chen(identity_data, fn).mig < 0.3


def test_chen_mig_constant_code_is_zero(identity_data):
    assert _chen(identity_data, constant).mig < 0.05


# --- DCI -------------------------------------------------------------------------------------


def test_dci_closed_forms():
    diag = np.diag(5.0 * np.ones(5))
    assert disentanglement(diag) == pytest.approx(1.0)
    assert completeness(diag) == pytest.approx(1.0)
    redundant = np.vstack([diag, diag])
    assert disentanglement(redundant) == pytest.approx(1.0)
    assert completeness(redundant) == pytest.approx(1 - np.log(2) / np.log(10))
    two_factors = np.hstack([diag, diag])
    assert disentanglement(two_factors) == pytest.approx(1 - np.log(2) / np.log(10))
    # Uniform importances: both scores vanish (entropy is maximal in each row / column).
    uniform = np.ones((4, 3))
    assert disentanglement(uniform) == pytest.approx(0.0, abs=1e-9)
    assert completeness(uniform) == pytest.approx(0.0, abs=1e-9)
    # Against scipy's entropy on a random matrix.
    r = np.random.RandomState(1).rand(6, 3)
    p = r / r.sum(1, keepdims=True)
    h = -(p * np.log(p)).sum(1) / np.log(3)
    assert disentanglement(r) == pytest.approx(np.sum((1 - h) * r.sum(1) / r.sum()), rel=1e-6)
    assert completeness(r) == pytest.approx(
        np.sum((1 - scipy.stats.entropy(r, base=6)) * r.sum(0) / r.sum()), rel=1e-6
    )


@pytest.mark.parametrize("importance", ["gbt", "random_forest"])
def test_dci_identity_and_duplicated(importance):
    data = IdentityData(num_factors=3, num_values=5)  # small: gradient boosting is slow

    def dci(fn):
        return compute_dci(data, fn, rs(), num_train=200, num_test=100, importance=importance)

    score = dci(identity)
    assert score.disentanglement > 0.9 and score.completeness > 0.9
    assert score.informativeness_test > 0.9
    dup = dci(duplicated)
    assert dup.disentanglement > 0.9
    # Each factor split evenly over 2 of the 6 codes: 1 − log 2 / log 6.
    assert dup.completeness == pytest.approx(1 - np.log(2) / np.log(6), abs=0.15)


def test_dci_rotated_is_lower(identity_data):
    score = compute_dci(
        identity_data, rotated, rs(), num_train=300, num_test=200, importance="random_forest"
    )
    assert score.disentanglement < 0.6


def test_mixture_entropy_of_identical_components_is_gaussian_entropy():
    # All components N(0.5, 0.3²): the mixture is that Gaussian, H = ½ log(2πe σ²) per dim.
    import torch

    from vae_audio.image.metrics import mixture_entropy

    mean = torch.full((2000, 2), 0.5, dtype=torch.float64)
    logvar = torch.full((2000, 2), 2 * np.log(0.3), dtype=torch.float64)
    h = mixture_entropy(mean, logvar, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(h.numpy(), 0.5 * np.log(2 * np.pi * np.e * 0.09), atol=0.05)
