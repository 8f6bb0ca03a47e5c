"""DiagonalGaussian against torch.distributions and Monte-Carlo estimates."""

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from vae_audio.core.distributions import DiagonalGaussian, as_gaussian, log_density_gaussian


def _random_gaussian(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(shape, generator=g, dtype=torch.float64)
    logvar = 0.5 * torch.randn(shape, generator=g, dtype=torch.float64)
    return DiagonalGaussian(mean, logvar)


@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 6)])
def test_kl_matches_torch_distributions(shape):
    q = _random_gaussian(shape)
    reference = kl_divergence(
        Normal(q.mean, q.std), Normal(torch.zeros_like(q.mean), torch.ones_like(q.mean))
    )
    torch.testing.assert_close(q.kl_per_dim(), reference)
    torch.testing.assert_close(q.kl(), reference.sum(-1))


def test_kl_matches_monte_carlo():
    torch.manual_seed(1)
    q = _random_gaussian((3, 4), seed=2)
    z = q.rsample(200_000)  # [n, 3, 4]
    prior = Independent(Normal(torch.zeros(3, 4, dtype=torch.float64), 1.0), 1)
    mc = (q.log_prob(z) - prior.log_prob(z)).mean(0)  # [3]
    std_err = (q.log_prob(z) - prior.log_prob(z)).std(0) / 200_000**0.5
    assert torch.all((mc - q.kl()).abs() < 5 * std_err)


def test_log_prob_and_density_match_normal():
    q = _random_gaussian((5, 3), seed=3)
    z = torch.randn(7, 5, 3, dtype=torch.float64)
    reference = Independent(Normal(q.mean, q.std), 1).log_prob(z)
    torch.testing.assert_close(q.log_prob(z), reference)
    torch.testing.assert_close(
        log_density_gaussian(z, q.mean, q.logvar), Normal(q.mean, q.std).log_prob(z)
    )


def test_rsample_moments_shapes_and_gradient():
    torch.manual_seed(4)
    mean = torch.tensor([1.0, -2.0], requires_grad=True)
    logvar = torch.tensor([0.0, 2.0 * torch.log(torch.tensor(3.0)).item()], requires_grad=True)
    q = DiagonalGaussian(mean, logvar)
    assert q.rsample().shape == (2,)
    z = q.rsample(100_000)
    assert z.shape == (100_000, 2)
    torch.testing.assert_close(z.mean(0), mean.detach(), atol=0.05, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 3.0]), atol=0.05, rtol=0)
    z.sum().backward()  # d/dmean of sum(mean + std * eps) = n
    torch.testing.assert_close(mean.grad, torch.full((2,), 100_000.0))
    assert not q.sample().requires_grad


def test_as_gaussian_and_shape_check():
    m, lv = torch.zeros(2, 3), torch.zeros(2, 3)
    assert as_gaussian((m, lv)).mean is m
    with pytest.raises(ValueError):
        DiagonalGaussian(m, torch.zeros(3))
    with pytest.raises(TypeError):
        as_gaussian(m)
