"""FCA / MNMF: likelihood, EM update against brute-force posterior moments, monotonicity,
recovery of sources sampled from the model, batching and precision."""

from __future__ import annotations

import pytest
import torch

from vae_audio.audio import StftConfig, stft
from vae_audio.errors import VaeAudioError
from vae_audio.separation.covariance import fca_covariance
from vae_audio.separation.fca import (
    em_update_scm,
    fca_log_likelihood,
    fit_fca,
    fit_free_fca,
    initial_scm,
)
from vae_audio.separation.mnmf import fit_mnmf
from vae_audio.separation.packed import pack_hermitian
from vae_audio.separation.source_model import FreePsd
from vae_audio.separation.wiener import wiener_full_rank

from .conftest import random_psd, sample_fca, speech_like, tf_sdr


def _assert_monotone(history: torch.Tensor, rel: float = 1e-9) -> None:
    """``history [B, I + 1]`` never decreases beyond ``rel · |L|`` (round-off)."""
    steps = history.diff(dim=1)
    assert (steps >= -rel * history[:, 1:].abs()).all(), steps.min()
    assert (history[:, -1] > history[:, 0]).all()


def test_log_likelihood_matches_real_gaussian():
    """Complex N_C(0, Y) equals the real 2M-dim Gaussian with covariance ½[[ReY, -ImY],
    [ImY, ReY]] (torch.distributions), summed over F and T."""
    g = torch.Generator().manual_seed(0)
    B, M, F, T = 2, 3, 4, 5
    Y = random_psd((B, F, T), M, load=0.3, generator=g)
    x = torch.randn(B, M, F, T, dtype=torch.complex128, generator=g)
    cov = 0.5 * torch.cat(
        [torch.cat([Y.real, -Y.imag], -1), torch.cat([Y.imag, Y.real], -1)], -2
    )  # [B, F, T, 2M, 2M]
    v = x.permute(0, 2, 3, 1)
    dist = torch.distributions.MultivariateNormal(torch.zeros(2 * M, dtype=torch.float64), cov)
    ref = dist.log_prob(torch.cat([v.real, v.imag], -1)).sum((1, 2))
    assert torch.allclose(fca_log_likelihood(x, Y), ref, rtol=1e-12)


def _posterior_power(x, lam, H, eps):
    """``Y [B, F, T, M, M]`` and ``R = E[c cᴴ | x] [B, N, F, T, M, M]`` computed explicitly:
    ``R = Y_n − Y_n Y⁻¹ Y_n + c cᴴ`` with the posterior means ``c = Y_n Y⁻¹ x``."""
    Y = fca_covariance(lam, H, eps)  # [B, F, T, M, M]
    Yinv = torch.linalg.inv(Y)
    Yn = lam[..., None, None] * H[:, :, :, None]  # [B, N, F, T, M, M]
    c = Yn @ Yinv[:, None] @ x.permute(0, 2, 3, 1)[:, None, ..., None]  # posterior means
    return Y, Yn - Yn @ Yinv[:, None] @ Yn + c @ c.mH


def test_em_update_matches_posterior_moments():
    """H_nf = (1/T) Σ_t E[c cᴴ | x] / λ with the posterior moments computed explicitly."""
    x, _, lam, H = sample_fca(B=2, M=3, N=2, F=5, T=7, seed=1)
    H0 = random_psd((2, 2, 5), 3, load=0.5)
    eps = 1e-3
    _, R = _posterior_power(x, lam, H0, eps)
    expected = (R / lam[..., None, None]).mean(3)
    assert torch.allclose(em_update_scm(x, lam, H0, eps), expected, rtol=1e-9, atol=1e-12)


def test_em_step_updates_the_psds_to_the_posterior_power():
    """GEM step of free-PSD FCA: after the SCMs, λ_nft = tr(H_nf⁻¹ E[c cᴴ | x]) / M, with
    the posterior moments computed explicitly at the old parameters (Duong et al. 2010)."""
    from vae_audio.separation.fca import _em_step, _Moments

    x, _, lam, _ = sample_fca(B=2, M=3, N=2, F=5, T=7, seed=4)
    H0 = random_psd((2, 2, 5), 3, load=0.5)
    eps = 1e-3
    Y, R = _posterior_power(x, lam, H0, eps)
    H1 = (R / lam[..., None, None]).mean(3)  # [B, N, F, M, M]
    expected = (torch.linalg.inv(H1)[:, :, :, None] @ R).diagonal(dim1=-2, dim2=-1).sum(-1)
    source = FreePsd(lam.clone())
    H_new = _em_step(_Moments.compute(x.transpose(1, 2), pack_hermitian(Y).mT), source, H0)
    assert torch.allclose(H_new, H1, rtol=1e-9, atol=1e-12)
    assert torch.allclose(source.psd(), expected.real / 3, rtol=1e-8, atol=1e-12)
    assert not torch.allclose(source.psd(), lam, rtol=1e-3)  # the PSDs moved


def test_em_step_keeps_the_scms_definite_when_round_off_breaks_them(monkeypatch):
    """The SCM update is PSD in exact arithmetic only. Where round-off leaves it indefinite
    (made so here by subtracting a rank-1 term from one bin's update), the GEM step returns
    a positive-definite ``H`` and finite PSDs (in complex64 with 6 mics such an ``H`` made the
    next E-step, then the whole fit, NaN)."""
    from vae_audio.separation import fca
    from vae_audio.separation.fca import _em_step, _Moments

    x, _, lam, _ = sample_fca(B=1, M=4, N=2, F=5, T=30, seed=7)
    H0 = random_psd((1, 2, 5), 4, load=0.5)
    exact = fca._em_scm

    def broken(mom, lam, H):
        H_new = exact(mom, lam, H).clone()
        v = torch.linalg.eigh(H_new[0, 1, 2])[1][:, -1]
        H_new[0, 1, 2] -= 1.5 * torch.linalg.eigvalsh(H_new[0, 1, 2])[-1] * torch.outer(v, v.conj())
        return H_new

    monkeypatch.setattr(fca, "_em_scm", broken)
    source = FreePsd(lam.clone(), 1e-9)
    Y = fca_covariance(lam, H0, 1e-3)
    H_new = _em_step(_Moments.compute(x.transpose(1, 2), pack_hermitian(Y).mT), source, H0)
    assert (torch.linalg.eigvalsh(H_new) > 0).all()
    assert torch.isfinite(source.psd()).all()
    # the same projection on request in em_update_scm (callers that repeat it without gradients)
    assert (torch.linalg.eigvalsh(em_update_scm(x, lam, H0, 1e-3, project=True)) > 0).all()
    assert (torch.linalg.eigvalsh(em_update_scm(x, lam, H0, 1e-3)) < 0).any()


def test_em_update_is_differentiable():
    x, _, lam, H = sample_fca(B=1, M=2, N=2, F=3, T=6, seed=2)
    lam = lam.clone().requires_grad_(True)
    H1 = em_update_scm(x, lam, torch.eye(2, dtype=x.dtype).expand(1, 2, 3, 2, 2), 1e-3)
    H1.abs().sum().backward()
    assert torch.isfinite(lam.grad).all() and lam.grad.abs().sum() > 0


@pytest.mark.parametrize("algorithm", ["em", "mu"])
def test_free_fca_monotone_and_recovers_sampled_sources(algorithm):
    """On data sampled from the FCA model, blind FCA reaches >= 15 dB TF-domain SDR
    (all mics, permutation solved) and stays within 5 dB of the oracle Wiener filter."""
    x, c, lam, H = sample_fca(M=4, N=2, F=24, T=200, seed=0)
    fit = fit_free_fca(x, 2, n_iter=80, algorithm=algorithm, init="fastmnmf2")
    _assert_monotone(fit.log_likelihood)
    est = fit.images(x)[0]
    oracle = tf_sdr(wiener_full_rank(x, lam, H)[0], c[0])
    got = tf_sdr(est, c[0])
    assert got >= 15.0, (got, oracle)
    assert oracle >= got - 0.5 and got >= oracle - 5.0, (got, oracle)


@pytest.mark.parametrize("algorithm", ["em", "mu"])
def test_mnmf_monotone_on_sampled_data(algorithm):
    x, *_ = sample_fca(M=3, N=2, F=16, T=80, seed=3)
    fit = fit_mnmf(x, 2, n_basis=4, n_iter=25, algorithm=algorithm, init="random")
    _assert_monotone(fit.log_likelihood)


@pytest.mark.parametrize("algorithm", ["em", "mu"])
def test_monotone_on_speech_like_mixture(algorithm):
    mix, _ = speech_like(M=3, seconds=0.8, sr=8000)
    X = stft(torch.as_tensor(mix), StftConfig(sample_rate=8000, n_fft=256, hop_length=128))
    fit = fit_mnmf(X[None], 3, n_basis=4, n_iter=15, algorithm=algorithm, n_iter_init=6)
    _assert_monotone(fit.log_likelihood)
    free = fit_free_fca(X[None], 2, n_iter=15, algorithm=algorithm, init="random")
    _assert_monotone(free.log_likelihood)


def test_batched_equals_one_by_one():
    x1, *_ = sample_fca(M=3, N=2, F=8, T=40, seed=4)
    x2, *_ = sample_fca(M=3, N=2, F=8, T=40, seed=5)
    x = torch.cat([x1, x2])
    both = fit_mnmf(x, 2, n_basis=3, n_iter=6, init="identity")
    for b, xb in enumerate((x1, x2)):
        one = fit_mnmf(xb, 2, n_basis=3, n_iter=6, init="identity")
        assert torch.allclose(both.log_likelihood[b], one.log_likelihood[0], rtol=1e-10)
        assert torch.allclose(both.H[b], one.H[0], atol=1e-9)
        assert torch.allclose(both.lam[b], one.lam[0], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["em", "mu"])
def test_float32_matches_float64(algorithm):
    x, *_ = sample_fca(M=3, N=2, F=8, T=60, seed=6)
    H0 = initial_scm(x, 2, "random", seed=0)[0]
    lam0 = torch.rand(1, 2, 8, 60, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fits = {}
    for cdtype, rdtype in ((torch.complex128, torch.float64), (torch.complex64, torch.float32)):
        src = FreePsd(lam0.to(rdtype) + 0.1, 1e-6)
        fits[cdtype] = fit_fca(x.to(cdtype), src, H0.to(cdtype), 5, algorithm, eps=1e-4)
    hi, lo = fits[torch.complex128], fits[torch.complex64]
    assert torch.allclose(lo.log_likelihood.double(), hi.log_likelihood, rtol=1e-4)
    ci, co = hi.images(x), lo.images(x.to(torch.complex64)).to(torch.complex128)
    assert (ci - co).abs().square().sum() / ci.abs().square().sum() < 1e-5


def test_fca_input_errors():
    x, *_ = sample_fca(M=2, N=2, F=4, T=10)
    src = FreePsd(torch.ones(1, 2, 4, 10, dtype=torch.float64))
    with pytest.raises(VaeAudioError, match="unknown FCA algorithm"):
        fit_fca(x, src, initial_scm(x, 2, "identity")[0], 1, "gibbs")
    with pytest.raises(VaeAudioError, match="unknown FCA init"):
        initial_scm(x, 2, "kmeans")
