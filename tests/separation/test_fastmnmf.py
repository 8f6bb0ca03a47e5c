"""FastMNMF / FastMNMF2: consistency with the full-rank model, monotonicity for every
initialisation, batching, precision, and a side-by-side check against pyroomacoustics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_audio.audio import StftConfig, stft
from vae_audio.errors import VaeAudioError
from vae_audio.separation.covariance import fca_covariance
from vae_audio.separation.fastmnmf import (
    JD_INITS,
    _transform,
    fit_fastmnmf,
    jd_log_likelihood,
    jd_model_power,
    jd_scm,
)
from vae_audio.separation.fca import fca_log_likelihood
from vae_audio.separation.wiener import wiener_full_rank, wiener_jd

from .conftest import sample_jd, speech_like, tf_sdr
from .test_fca import _assert_monotone


@pytest.mark.parametrize("frequency_dependent", [False, True])
def test_jd_likelihood_and_wiener_match_full_rank_model(frequency_dependent):
    """With H_nf = Q⁻¹ diag(g_n) Q⁻ᴴ the JD formulas equal the full-rank FCA ones."""
    x, _, Q, g, lam = sample_jd(B=2, M=3, N=2, F=6, T=9, seed=1)
    if frequency_dependent:
        g = g * torch.rand(2, 2, 6, 3, dtype=g.dtype) + 0.1  # [B, N, F, M]
    eps = torch.full((2, 6), 0.05, dtype=torch.float64)
    xf = x.transpose(1, 2)
    Qinv = torch.linalg.inv(Q)
    Y = fca_covariance(lam, jd_scm(Q, g)) + (0.05 * Qinv @ Qinv.mH)[:, :, None]
    got = jd_log_likelihood(_transform(xf, Q, torch.zeros(2, 6)), jd_model_power(lam, g, eps), Q)
    assert torch.allclose(got, fca_log_likelihood(x, Y), rtol=1e-10)
    zero = torch.zeros(2, 6, dtype=torch.float64)
    assert torch.allclose(
        wiener_jd(x, lam, g, Q, zero), wiener_full_rank(x, lam, jd_scm(Q, g)), atol=1e-9
    )


@pytest.mark.parametrize("init", JD_INITS)
@pytest.mark.parametrize("frequency_dependent", [False, True])
def test_monotone_every_init(init, frequency_dependent):
    x, *_ = sample_jd(M=3, N=2, F=12, T=80, seed=2)
    fit = fit_fastmnmf(
        x,
        2,
        n_basis=3,
        n_iter=15,
        frequency_dependent=frequency_dependent,
        init=init,
        n_iter_init=4,
    )
    _assert_monotone(fit.log_likelihood)


@pytest.mark.parametrize("frequency_dependent", [False, True])
def test_monotone_on_speech_like_mixture_float32(frequency_dependent):
    mix, _ = speech_like(M=3, seconds=1.0, sr=8000, seed=1)
    X = stft(torch.as_tensor(mix, dtype=torch.float32), StftConfig(sample_rate=8000, n_fft=256))
    fit = fit_fastmnmf(X[None], 3, n_basis=4, n_iter=30, frequency_dependent=frequency_dependent)
    _assert_monotone(fit.log_likelihood, rel=1e-5)  # float32 round-off


def test_recovers_jd_sources():
    x, c, Q, g, lam = sample_jd(M=3, N=2, F=16, T=150, seed=3)
    fit = fit_fastmnmf(x, 2, n_basis=4, n_iter=60, init="twostep")
    oracle = tf_sdr(wiener_jd(x, lam, g, Q, torch.zeros(1, 16, dtype=torch.float64))[0], c[0])
    got = tf_sdr(fit.images(x)[0], c[0])
    assert got >= 10.0 and got >= oracle - 6.0, (got, oracle)


def test_batched_equals_one_by_one():
    x1, *_ = sample_jd(M=3, F=8, T=50, seed=4)
    x2, *_ = sample_jd(M=3, F=8, T=50, seed=5)
    both = fit_fastmnmf(torch.cat([x1, x2]), 2, n_basis=3, n_iter=8, n_iter_init=3)
    for b, xb in enumerate((x1, x2)):
        one = fit_fastmnmf(xb, 2, n_basis=3, n_iter=8, n_iter_init=3)
        assert torch.allclose(both.log_likelihood[b], one.log_likelihood[0], rtol=1e-10)
        assert torch.allclose(both.Q[b], one.Q[0], atol=1e-9)
        assert torch.allclose(both.lam[b], one.lam[0], rtol=1e-7, atol=1e-12)


def test_float32_matches_float64():
    x, *_ = sample_jd(M=3, F=8, T=60, seed=6)
    hi = fit_fastmnmf(x, 2, n_basis=3, n_iter=5, init="identity")
    lo = fit_fastmnmf(x.to(torch.complex64), 2, n_basis=3, n_iter=5, init="identity")
    assert torch.allclose(lo.log_likelihood.double(), hi.log_likelihood, rtol=1e-4)
    ci, co = hi.images(x), lo.images(x.to(torch.complex64)).to(torch.complex128)
    assert (ci - co).abs().square().sum() / ci.abs().square().sum() < 1e-5


def test_comparable_to_pyroomacoustics():
    """Same data, iterations, bases and initialisation (identity Q, circular g): our SDR is
    no worse than pyroomacoustics' by more than 1 dB (their NMF draws differ from ours)."""
    pra = pytest.importorskip("pyroomacoustics")
    x, c, *_ = sample_jd(M=3, N=2, F=16, T=150, seed=7)
    np.random.seed(0)
    theirs = pra.bss.fastmnmf2(x[0].numpy().transpose(2, 1, 0), 2, 40, 4, mic_index="all")
    theirs = torch.as_tensor(theirs).permute(3, 0, 2, 1)  # [M, T, F, N] -> [N, M, F, T]
    ours = fit_fastmnmf(x, 2, n_basis=4, n_iter=40, init="identity").images(x)[0]
    sdr_theirs, sdr_ours = tf_sdr(theirs, c[0]), tf_sdr(ours, c[0])
    assert sdr_ours >= sdr_theirs - 1.0, (sdr_ours, sdr_theirs)


def test_unknown_init():
    x, *_ = sample_jd(F=4, T=10)
    with pytest.raises(VaeAudioError, match="unknown FastMNMF init"):
        fit_fastmnmf(x, 2, init="ilrma")


def test_source_model_plugs_in_and_joint_update_runs():
    """A caller-provided source model is the one updated (here free PSDs started at the true
    ones); the pyroomacoustics-style joint NMF update fits too (no monotonicity claimed)."""
    from vae_audio.separation.source_model import FreePsd

    x, c, Q, g, lam = sample_jd(M=3, N=2, F=16, T=150, seed=8)
    source = FreePsd(lam.clone(), 1e-8)
    fit = fit_fastmnmf(x, 2, n_iter=20, init="identity", source=source)
    assert fit.source is source
    _assert_monotone(fit.log_likelihood)
    joint = fit_fastmnmf(x, 2, n_basis=4, n_iter=30, nmf_update="joint")
    assert joint.log_likelihood[0, -1] > joint.log_likelihood[0, 0]
    with pytest.raises(VaeAudioError, match="nmf_update"):
        fit_fastmnmf(x, 2, nmf_update="simultaneous")


def _talkers_in_diffuse_noise(seed: int, snr_db: float = 5.0):
    """Two point talkers from the JD model plus spatially white, stationary noise.

    Returns ``x [1, M, F, T]`` and the images ``[3, M, F, T]`` (talkers, then the noise)."""
    _, c, *_ = sample_jd(M=3, N=2, F=16, T=150, seed=seed)  # [1, 2, M, F, T]
    gen = torch.Generator().manual_seed(seed + 100)
    psd = -torch.log(torch.rand(1, 1, 16, 1, generator=gen, dtype=torch.float64))  # [.., F, 1]
    noise = torch.randn(1, 3, 16, 150, dtype=torch.complex128, generator=gen) * psd.sqrt()
    scale = (c.abs().square().mean() / noise.abs().square().mean() / 10 ** (snr_db / 10)).sqrt()
    images = torch.cat([c[0], noise * scale])  # [3, M, F, T]
    return images.sum(0)[None], images


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("frequency_dependent", [False, True])
def test_noise_start_marks_the_noise_slot(seed, frequency_dependent):
    """``init="noise"``: the slot ``noise_index`` names (the last) is the one whose image
    correlates best with the true noise image, and the talkers come out of the others."""
    x, true = _talkers_in_diffuse_noise(seed)
    fit = fit_fastmnmf(
        x, 3, n_basis=4, n_iter=40, init="noise", frequency_dependent=frequency_dependent
    )
    assert fit.noise_index.tolist() == [2]
    est = fit.images(x)[0]  # [3, M, F, T]
    noise = true[2]
    corr = [
        float((e.conj() * noise).sum().abs() / (e.norm() * noise.norm())) for e in est
    ]  # normalised correlation of every slot's image with the noise image
    assert int(np.argmax(corr)) == 2, corr
    assert tf_sdr(est[:2], true[:2]) > 4.0  # measured 5.3-9.0 dB


def test_noise_start_batched_equals_one_by_one():
    x1, _ = _talkers_in_diffuse_noise(3)
    x2, _ = _talkers_in_diffuse_noise(4)
    kw = dict(n_basis=3, n_iter=8, n_iter_init=3, init="noise")
    both = fit_fastmnmf(torch.cat([x1, x2]), 3, **kw)
    for b, xb in enumerate((x1, x2)):
        one = fit_fastmnmf(xb, 3, **kw)
        assert torch.allclose(both.log_likelihood[b], one.log_likelihood[0], rtol=1e-10)
        assert torch.allclose(both.Q[b], one.Q[0], atol=1e-9)
        assert torch.allclose(both.lam[b], one.lam[0], rtol=1e-7, atol=1e-12)
        assert int(both.noise_index[b]) == int(one.noise_index[0]) == 2


def test_noise_start_needs_a_speech_slot():
    x, *_ = sample_jd(M=3, N=1, F=8, T=40)
    with pytest.raises(VaeAudioError, match="n_src >= 2"):
        fit_fastmnmf(x, 1, init="noise")
