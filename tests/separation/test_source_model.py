"""Source models: the PsdStats majoriser bounds the true negative log-likelihood, and the
NMF/free-PSD steps decrease what they should."""

from __future__ import annotations

import torch

from vae_audio.separation.fastmnmf import _stats_fn, _transform, jd_log_likelihood, jd_model_power
from vae_audio.separation.fca import _inner, _Moments
from vae_audio.separation.source_model import FreePsd, NmfPsd, PsdStats

from .conftest import sample_fca, sample_jd


def _fca_stats(x, H, eps):
    xf = x.transpose(1, 2)

    def stats(lam):
        m = _Moments.at(xf, lam, H, eps)
        return PsdStats(_inner(m.P, H), _inner(m.Yinv, H), lam), m.log_likelihood

    return stats


def test_fca_majoriser_bounds_negative_log_likelihood():
    """−L(λ) + L(λ̄) <= S(λ) − S(λ̄) for random λ (Sawada et al. 2013, Eq. (27))."""
    x, _, lam, H = sample_fca(M=3, N=2, F=6, T=20, seed=0)
    stats = _fca_stats(x, H, 1e-2)
    s_bar, ll_bar = stats(lam)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        other = lam * torch.exp(torch.randn(lam.shape, generator=gen, dtype=lam.dtype))
        _, ll = stats(other)
        assert -ll + ll_bar <= s_bar.surrogate(other) - s_bar.surrogate(lam) + 1e-8


def test_jd_majoriser_bounds_negative_log_likelihood():
    x, _, Q, g, lam = sample_jd(M=3, N=2, F=6, T=20, seed=1)
    xt = _transform(x.transpose(1, 2), Q, torch.zeros(1, 6, dtype=torch.float64))
    eps = torch.full((1, 6), 1e-3, dtype=torch.float64)
    s_bar = _stats_fn(xt, g, eps)(lam)
    ll = lambda v: jd_log_likelihood(xt, jd_model_power(v, g, eps), Q)  # noqa: E731
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        other = lam * torch.exp(torch.randn(lam.shape, generator=gen, dtype=lam.dtype))
        assert -ll(other) + ll(lam) <= s_bar.surrogate(other) - s_bar.surrogate(lam) + 1e-8


def _is_div(p, lam):
    return (p / lam - torch.log(p / lam) - 1).sum()


def test_nmf_em_update_decreases_is_divergence_and_free_psd_hits_the_target():
    gen = torch.Generator().manual_seed(2)
    p = torch.rand(2, 3, 10, 30, generator=gen, dtype=torch.float64) + 0.01  # [B, N, F, T]
    nmf = NmfPsd.random(
        (2, 3, 10, 4, 30),
        torch.ones(2, dtype=torch.float64),
        gen,
        torch.float64,
        torch.device("cpu"),
    )
    before = _is_div(p, nmf.psd())
    for _ in range(10):
        prev = _is_div(p, nmf.psd())
        nmf.em_update(p)
        assert _is_div(p, nmf.psd()) <= prev + 1e-12
    assert _is_div(p, nmf.psd()) < before
    free = FreePsd(torch.ones_like(p))
    free.em_update(p)
    assert torch.equal(free.psd(), p)


def test_rescale_keeps_psd_consistent():
    gen = torch.Generator().manual_seed(3)
    nmf = NmfPsd.random(
        (1, 2, 5, 3, 7), torch.ones(1, dtype=torch.float64), gen, torch.float64, torch.device("cpu")
    )
    c = torch.rand(1, 2, 5, dtype=torch.float64, generator=gen) + 0.5
    expected = nmf.psd() * c[..., None]
    nmf.rescale(c)
    assert torch.allclose(nmf.psd(), expected)
    assert torch.allclose(nmf.W.sum(2), torch.ones(1, 2, 3, dtype=torch.float64))
