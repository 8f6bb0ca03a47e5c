"""Mixture prior: densities against torch.distributions, the Monte Carlo KL, sampling, and the
clustering accuracy with Hungarian matching."""

import math

import numpy as np
import pytest
import torch
from torch import distributions as td

from vae_audio.image.build import build_model
from vae_audio.image.metrics import clustering_accuracy
from vae_audio.image.mixture_prior import MixturePrior, log_responsibilities, mixture_log_prob


def _reference(logits, means, logvars):
    components = td.Independent(td.Normal(means, torch.exp(0.5 * logvars)), 1)
    return td.MixtureSameFamily(td.Categorical(logits=logits), components)


@pytest.mark.parametrize(("k", "d", "batch"), [(1, 1, (5,)), (3, 2, (7,)), (10, 6, (4, 3))])
def test_log_density_matches_mixture_same_family(k, d, batch):
    g = torch.Generator().manual_seed(k * d)
    logits, means = torch.randn(k, generator=g), 2 * torch.randn(k, d, generator=g)
    logvars = torch.randn(k, d, generator=g)
    z = 3 * torch.randn(*batch, d, generator=g)
    ref = _reference(logits, means, logvars)
    torch.testing.assert_close(mixture_log_prob(z, logits, means, logvars), ref.log_prob(z))
    # Responsibilities are Bayes' rule on the same terms: π_k N_k(z) / p(z).
    comp = ref.component_distribution.log_prob(z[..., None, :])  # [..., K]
    expected = torch.log_softmax(logits, -1) + comp - ref.log_prob(z)[..., None]
    torch.testing.assert_close(log_responsibilities(z, logits, means, logvars), expected)


def test_prior_samples_follow_the_mixture():
    torch.manual_seed(0)
    prior = MixturePrior(2, 3)
    with torch.no_grad():
        prior.logits.copy_(torch.log(torch.tensor([0.25, 0.75])))
        prior.means.copy_(torch.tensor([[-4.0, 0.0, 1.0], [4.0, 2.0, -1.0]]))
        prior.logvars.copy_(torch.log(torch.tensor([[0.25] * 3, [1.0] * 3])))
    z, k = prior.sample(20000, torch.Generator().manual_seed(0))
    assert float((k == 1).float().mean()) == pytest.approx(0.75, abs=0.015)
    for c in (0, 1):
        torch.testing.assert_close(z[k == c].mean(0), prior.means[c].detach(), atol=0.05, rtol=0)
        std = torch.exp(0.5 * prior.logvars[c]).detach()
        torch.testing.assert_close(z[k == c].std(0), std, atol=0.05, rtol=0)
    z1, _ = prior.sample(5, torch.Generator().manual_seed(0), component=1)
    assert bool((z1[:, 0] > 0).all())  # all from the component at +4


def test_monte_carlo_kl_is_unbiased_for_a_one_component_standard_prior():
    # With K = 1, μ_1 = 0, σ_1 = 1 the prior is N(0, I): the MC KL averages to the closed form.
    torch.manual_seed(0)
    model = build_model(
        {"network": "mlp", "hidden": [32], "latent_dim": 3, "num_components": 1},
        "gmm_vae",
        (1, 8, 8),
    )
    with torch.no_grad():
        model.prior.means.zero_()
    x = torch.rand(4, 1, 8, 8)
    n = 5000
    with torch.no_grad():
        q = model.encode(x)
        kls = model(x.repeat(n, 1, 1, 1)).kl.reshape(n, 4)  # [n, B]: n draws per image
    mean, sem = kls.mean(0), kls.std(0) / math.sqrt(n)
    assert bool(((mean - q.kl()).abs() < 4 * sem + 1e-4).all()), (mean, q.kl())


def test_cluster_picks_the_component_of_the_posterior_mean():
    torch.manual_seed(0)
    model = build_model(
        {"network": "mlp", "hidden": [32], "latent_dim": 2, "num_components": 3},
        "gmm_vae",
        (1, 8, 8),
    )
    x = torch.rand(16, 1, 8, 8)
    mean = model.encode(x).mean
    ref = _reference(model.prior.logits, model.prior.means, model.prior.logvars)
    joint = torch.log_softmax(model.prior.logits, -1) + ref.component_distribution.log_prob(
        mean[:, None, :]
    )
    assert torch.equal(model.cluster(x), joint.argmax(1))


def test_clustering_accuracy_with_permuted_and_noisy_components():
    truth = np.repeat([0, 1, 2], 10)
    assert clustering_accuracy((truth + 1) % 3, truth).accuracy == 1.0  # relabelled, perfect
    noisy = (truth + 1) % 3
    noisy[:3] = 0  # 3 images of class 0 moved to component 0, which matches class 2
    score = clustering_accuracy(noisy, truth)
    assert score.accuracy == pytest.approx(27 / 30)
    assert score.mapping == [2, 0, 1]
    # Four components for three classes: one-to-one leaves the extra component unmatched.
    split = np.where(np.arange(30) < 5, 3, truth)
    score = clustering_accuracy(split, truth, num_components=4)
    assert score.accuracy == pytest.approx(25 / 30) and score.purity == 1.0
    # Assignments unrelated to the classes score about 1 / C.
    rs = np.random.RandomState(0)
    chance = clustering_accuracy(rs.randint(3, size=3000), rs.randint(3, size=3000))
    assert chance.accuracy == pytest.approx(1 / 3, abs=0.04)
