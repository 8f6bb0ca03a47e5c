"""Likelihoods against torch.distributions and closed-form relations."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from vae_audio.core.likelihoods import (
    BernoulliLikelihood,
    ComplexGaussianLikelihood,
    GaussianLikelihood,
    Likelihood,
    bernoulli_nll,
    build_likelihood,
    complex_gaussian_nll,
    gaussian_nll,
    is_divergence,
)
from vae_audio.errors import VaeAudioError


@pytest.mark.parametrize("shape", [(7,), (2, 5, 4)])
def test_complex_gaussian_nll_matches_two_real_normals(shape):
    g = torch.Generator().manual_seed(0)
    psd = torch.rand(shape, generator=g, dtype=torch.float64) * 3 + 0.1
    std = torch.sqrt(psd / 2)  # real and imaginary parts each ~ N(0, λ/2)
    x = torch.complex(
        torch.randn(shape, generator=g, dtype=torch.float64) * std,
        torch.randn(shape, generator=g, dtype=torch.float64) * std,
    )
    reference = -(Normal(0.0, std).log_prob(x.real) + Normal(0.0, std).log_prob(x.imag))
    nll = complex_gaussian_nll(x.abs() ** 2, psd, eps=0.0)
    torch.testing.assert_close(nll, reference)
    torch.testing.assert_close(nll, torch.log(math.pi * psd) + x.abs() ** 2 / psd)
    # the class accepts the complex STFT itself
    torch.testing.assert_close(ComplexGaussianLikelihood(eps=0.0).nll(x, psd), reference)


def test_is_divergence_relation_and_minimum():
    g = torch.Generator().manual_seed(1)
    power = torch.rand(50, generator=g, dtype=torch.float64) + 0.01
    psd = torch.rand(50, generator=g, dtype=torch.float64) + 0.01
    d = is_divergence(power, psd, eps=0.0)
    nll = complex_gaussian_nll(power, psd, eps=0.0)
    torch.testing.assert_close(d, nll - torch.log(math.pi * power) - 1.0)
    assert torch.all(d >= 0)
    torch.testing.assert_close(is_divergence(power, power, eps=0.0), torch.zeros(50).double())


def test_gaussian_nll_matches_normal():
    g = torch.Generator().manual_seed(2)
    x, mean = torch.randn(2, 3, 4, generator=g)
    logvar = torch.randn(3, 4, generator=g)
    reference = -Normal(mean, torch.exp(0.5 * logvar)).log_prob(x)
    torch.testing.assert_close(gaussian_nll(x, mean, logvar), reference)
    torch.testing.assert_close(
        GaussianLikelihood(learnt_variance=True).nll(x, (mean, logvar)), reference
    )
    torch.testing.assert_close(
        GaussianLikelihood(logvar=0.3).nll(x, mean), -Normal(mean, math.exp(0.15)).log_prob(x)
    )


def test_bernoulli_nll_matches_bernoulli_including_extreme_logits():
    logits = torch.tensor([-80.0, -3.0, 0.0, 2.5, 80.0])
    for target in (torch.zeros(5), torch.ones(5), torch.full((5,), 0.3)):
        reference = -(
            target * torch.nn.functional.logsigmoid(logits)
            + (1 - target) * torch.nn.functional.logsigmoid(-logits)
        )
        torch.testing.assert_close(bernoulli_nll(target, logits), reference)
    binary = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    torch.testing.assert_close(
        BernoulliLikelihood().nll(binary, logits), -Bernoulli(logits=logits).log_prob(binary)
    )
    torch.testing.assert_close(BernoulliLikelihood().mean(logits), torch.sigmoid(logits))


def test_build_likelihood_unknown_name():
    assert isinstance(build_likelihood("complex_gaussian", eps=1e-6), ComplexGaussianLikelihood)
    with pytest.raises(VaeAudioError, match="unknown likelihood 'poisson'"):
        build_likelihood("poisson")


def test_default_floors_and_variances_are_the_documented_ones():
    """The defaults are part of the model: eps = 1e-8 on power and PSD, unit variance."""
    zero, tiny = torch.zeros(1, dtype=torch.float64), torch.full((1,), 1e-8, dtype=torch.float64)
    # at the floor's scale the floor decides the value: p = 1e-8, λ = 2e-8
    expect = 0.5 - math.log(0.5) - 1.0
    torch.testing.assert_close(is_divergence(zero, tiny), torch.full_like(zero, expect))
    lam = 2e-8
    nll = torch.full_like(zero, math.log(math.pi * lam) + 1e-8 / lam)
    torch.testing.assert_close(complex_gaussian_nll(tiny, tiny), nll)
    torch.testing.assert_close(ComplexGaussianLikelihood().nll(tiny, tiny), nll)
    x, mean = torch.tensor([1.5], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    unit = Normal(mean, 1.0).log_prob(x).neg()
    torch.testing.assert_close(gaussian_nll(x, mean), unit)
    torch.testing.assert_close(GaussianLikelihood().nll(x, mean), unit)


def test_is_divergence_floors_both_sides():
    """The floor is added to the power and to the PSD alike."""
    power = torch.tensor([2.0], dtype=torch.float64)
    psd = torch.tensor([1.0], dtype=torch.float64)
    eps = 0.5
    r = (2.0 + eps) / (1.0 + eps)
    expect = torch.tensor([r - math.log(r) - 1], dtype=torch.float64)
    torch.testing.assert_close(is_divergence(power, psd, eps), expect)


def test_learnt_variance_reads_mean_and_logvar_from_the_decoder():
    lik = GaussianLikelihood(learnt_variance=True)
    x = torch.tensor([1.0, -2.0], dtype=torch.float64)
    mean = torch.tensor([0.5, 0.0], dtype=torch.float64)
    logvar = torch.tensor([0.3, -1.2], dtype=torch.float64)
    expect = Normal(mean, (0.5 * logvar).exp()).log_prob(x).neg()
    torch.testing.assert_close(lik.nll(x, (mean, logvar)), expect)
    assert torch.equal(lik.mean((mean, logvar)), mean)
    assert isinstance(lik, Likelihood)  # the protocol is checkable at run time
