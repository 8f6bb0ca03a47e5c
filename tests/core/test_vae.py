"""VAE composition: ELBO of a linear-Gaussian model equals the exact log-evidence; reductions."""

import math

import torch
from torch import nn
from torch.distributions import Bernoulli, MultivariateNormal

from vae_audio.core.distributions import DiagonalGaussian
from vae_audio.core.likelihoods import (
    BernoulliLikelihood,
    ComplexGaussianLikelihood,
    GaussianLikelihood,
)
from vae_audio.core.vae import VAE, elbo


class _ExactPosterior(nn.Module):
    """Exact posterior of x = W z + b + N(0, σ² I), z ~ N(0, I), when W has orthogonal columns."""

    def __init__(self, w, b, noise_var):
        super().__init__()
        self.w, self.b, self.noise_var = w, b, noise_var
        self.post_var = 1.0 / (1.0 + (w**2).sum(0) / noise_var)  # [D]

    def forward(self, x):
        mean = self.post_var * ((x - self.b) @ self.w) / self.noise_var  # [B, F] @ [F, D] -> [B, D]
        return DiagonalGaussian(mean, torch.log(self.post_var).expand_as(mean))


class _Linear(nn.Module):
    def __init__(self, w, b):
        super().__init__()
        self.w, self.b = w, b

    def forward(self, z):
        return z @ self.w.T + self.b  # [..., D] @ [D, F] -> [..., F]


def test_elbo_with_exact_posterior_equals_log_evidence():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(5, 2, generator=g, dtype=torch.float64))
    w = q * torch.tensor([2.0, 0.7], dtype=torch.float64)  # orthogonal columns
    b = torch.randn(5, generator=g, dtype=torch.float64)
    noise_var = 0.3
    vae = VAE(
        _ExactPosterior(w, b, noise_var),
        _Linear(w, b),
        GaussianLikelihood(logvar=math.log(noise_var)),
    )
    x = torch.randn(6, 5, generator=g, dtype=torch.float64) * 2
    log_evidence = MultivariateNormal(
        b, w @ w.T + noise_var * torch.eye(5, dtype=torch.float64)
    ).log_prob(x)

    # exact posterior: log p(x | z) + log p(z) − log q(z | x) = log p(x) for every sample z
    out = vae(x)
    log_prior = DiagonalGaussian(torch.zeros_like(out.z), torch.zeros_like(out.z)).log_prob(out.z)
    torch.testing.assert_close(
        -out.recon_nll + log_prior - out.posterior.log_prob(out.z), log_evidence
    )
    # and the ELBO with the analytic KL equals log p(x) in expectation over z
    many = vae(x, n_samples=20_000)
    assert many.recon_nll.shape == many.kl.shape == (6,)
    torch.testing.assert_close(many.elbo(), log_evidence, atol=0.05, rtol=0)


def test_shapes_reductions_and_sampling_off():
    torch.manual_seed(1)
    enc = nn.Linear(6, 2 * 3)
    vae = VAE(lambda x: enc(x).chunk(2, dim=-1), nn.Linear(3, 6), BernoulliLikelihood())
    x = torch.rand(4, 6).round()
    out = vae(x, sample=False)
    logits = vae.decoder(out.posterior.mean)
    torch.testing.assert_close(out.recon_nll, -Bernoulli(logits=logits).log_prob(x).sum(-1))
    torch.testing.assert_close(out.kl, out.posterior.kl())
    assert out.kl_per_dim.shape == (4, 3)
    torch.testing.assert_close(out.loss(beta=2.0), (out.recon_nll + 2.0 * out.kl).mean())
    torch.testing.assert_close(vae.reconstruct(x), torch.sigmoid(logits).detach())

    many = vae(x, n_samples=5)
    assert many.z.shape == (5, 4, 3) and many.decoded.shape == (5, 4, 6)
    per_sample = -Bernoulli(logits=vae.decoder(many.z)).log_prob(x).sum(-1)  # [5, 4]
    torch.testing.assert_close(many.recon_nll, per_sample.mean(0))


def test_framewise_speech_layout_with_complex_target():
    # encoder on log-power frames [B, T, F] -> z [B, T, D]; decoder -> PSD [B, T, F]
    torch.manual_seed(2)
    n_freq, latent = 9, 4
    enc = nn.Linear(n_freq, 2 * latent)
    dec = nn.Linear(latent, n_freq)
    vae = VAE(
        lambda x: enc(x).chunk(2, dim=-1),
        lambda z: torch.exp(dec(z)),
        ComplexGaussianLikelihood(eps=0.0),
        data_dims=1,
    )
    stft = torch.randn(2, 7, n_freq, dtype=torch.complex64)  # [B, T, F]
    power = stft.abs() ** 2
    out = vae(torch.log(power + 1e-8), target=stft, sample=False)
    psd = out.decoded
    assert out.recon_nll.shape == out.kl.shape == (2, 7)
    torch.testing.assert_close(out.recon_nll, (torch.log(math.pi * psd) + power / psd).sum(-1))
    assert elbo(out.recon_nll.sum(-1), out.kl).shape == (2,)  # KL summed over T
    torch.testing.assert_close(elbo(out.recon_nll.sum(-1), out.kl), out.elbo().sum(-1))


def test_condition_reaches_encoder_and_decoder_with_samples():
    class Enc(nn.Module):
        def forward(self, x, c):
            return x + c, torch.zeros_like(x)

    class Dec(nn.Module):
        def forward(self, z, c):
            return z * 0 + c

    vae = VAE(Enc(), Dec(), GaussianLikelihood())
    x, c = torch.zeros(3, 2), torch.arange(6.0).reshape(3, 2)
    out = vae(x, condition=c, n_samples=4)
    assert out.decoded.shape == (4, 3, 2)
    torch.testing.assert_close(out.decoded, c.expand(4, 3, 2))
    torch.testing.assert_close(out.posterior.mean, c)
