"""VAE-FCA (full and JD SCMs) and vae-nmf as separation methods: monotone objectives, data
sampled from the VAE-FCA model itself, batching, the STFT check and the registry."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import vae_audio
from vae_audio.audio import StftConfig, istft, stft
from vae_audio.errors import VaeAudioError
from vae_audio.eval.metrics import bss_eval
from vae_audio.separation import METHODS, fit_vae_fca, separate
from vae_audio.separation.wiener import wiener_full_rank

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CFG = StftConfig()  # the shipped prior's STFT: 16 kHz, n_fft 512, hop 128


@pytest.fixture(scope="module")
def prior():
    return vae_audio.pretrained("speech-vae")


def sample_model(prior, B=1, M=3, T=64, seed=0):
    """A mixture drawn from the VAE-FCA model (complex128): two talkers with
    ``λ = v_nt g(z_nt)``, ``z ~ N(0, I)`` through the shipped decoder, ``v`` on/off frame
    gains, and a rank-2 NMF noise 10 dB down; JD SCMs ``Q_f⁻¹ diag(g_n) Q_f⁻ᴴ`` (talker n
    dominates channel n, the noise is spread evenly). Returns ``x [B, M, F, T]``, images
    ``c [B, 3, M, F, T]``, ``lam [B, 3, F, T]``, ``H [B, 3, F, M, M]``."""
    gen = torch.Generator().manual_seed(seed)
    real, cplx = torch.float64, torch.complex128
    F, D = prior.config.n_freq, prior.config.latent_dim
    with torch.no_grad():
        z = torch.randn(B, 2, T, D, generator=gen, dtype=real)
        g = copy.deepcopy(prior).double().decode(z)  # [B, 2, F, T]
    on = (torch.rand(B, 2, 1, T, generator=gen, dtype=real) < 0.7).to(real)
    speech = g / g.mean((2, 3), keepdim=True) * (torch.rand(B, 2, 1, T, generator=gen) + 0.5)
    speech = speech * (on + 0.01)  # [B, 2, F, T]
    noise = torch.rand(B, 1, F, 2, generator=gen, dtype=real) @ (
        torch.rand(B, 1, 2, T, generator=gen, dtype=real) + 0.5
    )  # [B, 1, F, T]
    lam = torch.cat([speech, 0.1 * noise / noise.mean((2, 3), keepdim=True)], 1)
    Q = torch.randn(B, F, M, M, generator=gen, dtype=cplx) + 2 * torch.eye(M, dtype=cplx)
    gains = torch.full((B, 3, 1, M), 0.02, dtype=real)
    gains[:, 0, 0, 0] = gains[:, 1, 0, 1] = 1.0
    gains[:, 2] = 1.0 / M
    A = torch.linalg.inv(Q)[:, None]  # [B, 1, F, M, M]
    H = (A * gains.to(cplx)[..., None, :]) @ A.mH  # [B, 3, F, M, M]
    cov = lam[..., None, None].to(cplx) * H[:, :, :, None] + 1e-12 * torch.eye(M, dtype=cplx)
    w = torch.randn(B, 3, F, T, M, 1, generator=gen, dtype=cplx)
    c = (torch.linalg.cholesky(cov) @ w)[..., 0].permute(0, 1, 4, 2, 3)  # [B, 3, M, F, T]
    return c.sum(1), c, lam, H


@pytest.fixture(scope="module")
def model_mix(prior):
    return sample_model(prior)


@pytest.fixture(scope="module")
def speech_mix():
    """The 4-mic fixture mixture (2 TTS talkers, pink noise; 1.2 s) and its talker images."""
    folder = FIXTURES / "mixture" / "000000"
    n = 19200
    mix = sf.read(folder / "mix.wav", dtype="float32")[0].T[:, :n]  # [M, S]
    refs = np.stack([sf.read(folder / f"src{k}.wav", dtype="float32")[0].T[:, :n] for k in (1, 2)])
    return np.ascontiguousarray(mix), refs  # [M, S], [2, M, S]


def _sdr(ref: torch.Tensor, est: torch.Tensor) -> float:
    """Mean BSS Eval SDR (dB) of mic-0 spectrogram images ``est [N, F, T]`` against
    ``ref [K, F, T]`` (both through the ISTFT)."""
    return float(bss_eval(istft(ref, CFG).numpy(), istft(est, CFG).numpy()).sdr.mean())


@pytest.mark.parametrize(
    "kwargs",
    [{"spatial": "full"}, {"spatial": "full", "algorithm": "em"}, {"spatial": "jd"}],
    ids=["full-mu", "full-em", "jd"],
)
@pytest.mark.parametrize("z_steps", [0, 5])
def test_objective_never_decreases(speech_mix, kwargs, z_steps):
    """Real speech, complex128. With Adam z steps the MAP objective ``L + log p(z)`` is
    monotone (the safeguarded z step may trade likelihood for prior); with z fixed
    (``z_steps=0``: u, v, noise NMF and SCMs only) the likelihood ``L`` itself is."""
    x = stft(torch.as_tensor(speech_mix[0][:, 3200:9600], dtype=torch.float64), CFG)[None]
    fit = fit_vae_fca(x, 3, n_iter=10, z_steps=z_steps, n_iter_init=6, **kwargs)
    objective = fit.log_likelihood + (fit.log_prior if z_steps else 0)  # [1, 11]
    step = objective.diff(dim=1)
    assert bool((step >= -1e-9 * objective[:, 1:].abs()).all()), step
    assert bool((objective[:, -1] > objective[:, 1]).all())  # and it does move
    if z_steps:
        assert not torch.equal(fit.log_prior[:, 0], fit.log_prior[:, -1])  # z moved


@pytest.mark.parametrize(
    "kwargs",
    [{"spatial": "full"}, {"spatial": "jd"}, {"spatial": "jd", "z_update": "mh", "z_steps": 2}],
    ids=["full", "jd", "jd-mh"],
)
def test_separates_a_mixture_of_its_own_model(prior, model_mix, kwargs):
    """Within 4.5 dB of the oracle Wiener filter (true PSDs and SCMs) on data from the model:
    the oracle gets 18.3 dB, the unprocessed mixture 1.0 dB; measured 15.4 (full), 14.2 (jd)
    and 15.3 dB (jd-mh); MNMF gets 14.3 dB."""
    x, c, lam, H = model_mix
    fit = fit_vae_fca(x, 3, n_iter=25, prior=prior, **kwargs)
    images = fit.images(x)[0, :, 0]  # [3, F, T] mic 0
    oracle = _sdr(c[0, :2, 0], wiener_full_rank(x, lam, H)[0, :2, 0])
    est = _sdr(c[0, :2, 0], images[:2])
    assert oracle > 15 and _sdr(c[0, :2, 0], x[0, :1].expand(2, -1, -1)) < 3
    assert est > oracle - 4.5, (est, oracle)
    # the NMF slot (the last, as noise_index says) holds the noise: its image is closest to it
    assert int(fit.noise_index[0]) == 2
    err = [(images[n] - c[0, 2, 0]).abs().square().sum() for n in range(3)]
    assert int(torch.stack(err).argmin()) == 2
    if kwargs.get("z_update") == "mh":
        assert 0.05 < fit.source.acceptance < 0.95


@pytest.mark.parametrize(
    "kwargs",
    [{"spatial": "full"}, {"spatial": "jd"}, {"spatial": "jd", "z_update": "mh", "z_steps": 1}],
    ids=["full", "jd", "jd-mh"],
)
def test_batched_equals_one_by_one(prior, kwargs):
    x = sample_model(prior, B=2, T=24, seed=1)[0]
    both = fit_vae_fca(x, 3, n_iter=4, n_iter_init=3, **kwargs)
    for b in range(2):
        one = fit_vae_fca(x[b : b + 1], 3, n_iter=4, n_iter_init=3, **kwargs)
        torch.testing.assert_close(both.log_likelihood[b], one.log_likelihood[0], rtol=1e-9, atol=0)
        torch.testing.assert_close(both.images(x)[b], one.images(x[b : b + 1])[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"spatial": "full", "algorithm": "em", "z_update": "mh", "z_steps": 1},
        {"spatial": "jd", "n_noise": 0},
        {"spatial": "full", "n_noise": 0, "z_init": "mixture"},
    ],
    ids=["em-mh", "jd-no-noise", "full-no-noise-mixture-init"],
)
def test_variants_give_finite_images_that_add_up(prior, kwargs):
    x = sample_model(prior, T=24, seed=2)[0]
    weights = [p.detach().clone() for p in prior.parameters()]
    fit = fit_vae_fca(x, 3, n_iter=3, n_iter_init=3, prior=prior, **kwargs)
    images = fit.images(x)  # [1, 3, M, F, T]
    assert torch.isfinite(fit.log_likelihood).all() and torch.isfinite(images).all()
    # the images add up to the mixture up to the ε floor's share
    assert float((images.sum(1) - x).abs().square().sum() / x.abs().square().sum()) < 1e-5
    assert (fit.noise_index is None) == (kwargs.get("n_noise") == 0)
    assert fit.source.z.shape == (1, 3 - (kwargs.get("n_noise", 1)), 24, prior.latent_dim)
    for p, w in zip(prior.parameters(), weights, strict=True):  # the caller's prior is untouched
        assert p.dtype == torch.float32 and torch.equal(p, w)


@pytest.mark.cuda
def test_cuda_matches_cpu(model_mix):
    x = model_mix[0].to(torch.complex64)
    cpu = fit_vae_fca(x, 3, n_iter=5, spatial="jd")
    gpu = fit_vae_fca(x.cuda(), 3, n_iter=5, spatial="jd")
    torch.testing.assert_close(gpu.log_likelihood.cpu(), cpu.log_likelihood, rtol=1e-3, atol=0)


def test_stft_mismatch_is_refused(speech_mix, prior):
    mix = speech_mix[0]
    with pytest.raises(
        VaeAudioError, match=r"made with n_fft=512.*has n_fft=256.*pass stft="
    ) as err:
        separate(mix, "vae-fca", n_src=2, stft=StftConfig(n_fft=256, hop_length=64), n_iter=1)
    assert "\n" not in str(err.value)
    x = stft(torch.as_tensor(mix[:, :4000]), StftConfig(sample_rate=8000))[None]
    with pytest.raises(VaeAudioError, match=r"sample_rate=16000.*sample_rate=8000") as err:
        fit_vae_fca(x, 3, n_iter=1, prior=prior, stft=StftConfig(sample_rate=8000))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spatial": "diag"}, "unknown spatial"),
        ({"spatial": "jd", "algorithm": "em"}, "full' only"),
        ({"n_noise": 2}, "n_noise"),
        ({"z_update": "hmc"}, "z_update"),
        ({"z_init": "noise"}, "z_init"),
        ({"prior": "no-such-prior"}, "no shipped model"),
    ],
)
def test_bad_options(model_mix, kwargs, match):
    with pytest.raises(VaeAudioError, match=match):
        fit_vae_fca(model_mix[0][..., :8], 3, n_iter=1, **kwargs)


@pytest.mark.parametrize("method", ["vae-fca", "vae-fastfca"])
def test_separate_round_trip_on_speech(speech_mix, method):
    """Registry round trip on real speech: shapes, images adding up to the mixture and a
    clear SDR gain over the unprocessed mixture (mir_eval, mic 0)."""
    mix, refs = speech_mix
    assert {"vae-fca", "vae-fastfca", "vae-nmf"} <= set(METHODS)
    n_iter = 30 if method == "vae-fastfca" else 15
    res = separate(mix, method, n_src=2, n_iter=n_iter)
    M, S = mix.shape
    assert res.sources.shape == (2, M, S) and res.noise.shape == (M, S)
    assert res.objective.shape == (1, n_iter + 1)
    total = res.sources.sum(0) + res.noise
    assert float((total - torch.as_tensor(mix)).square().sum() / np.square(mix).sum()) < 1e-4
    base = bss_eval(refs[:, 0], np.stack([mix[0], mix[0]])).sdr.mean()
    sdr = bss_eval(refs[:, 0], res.sources[:, 0].numpy()).sdr.mean()
    assert sdr > base + 6, (sdr, base)


def test_separate_silent_input_is_finite(speech_mix):
    res = separate(np.zeros_like(speech_mix[0][:, :4000]), "vae-fastfca", n_src=2, n_iter=3)
    assert torch.isfinite(res.sources).all() and torch.isfinite(res.objective).all()


@pytest.fixture(scope="module")
def noisy_speech():
    """One TTS utterance plus white noise at 0 dB SNR, single channel: ``mix [1, S]``,
    ``speech [S]``."""
    wav = sf.read(next((FIXTURES / "corpus" / "wav").glob("flite_kal/*.wav")), dtype="float32")[0]
    wav = wav[:24000]
    noise = np.random.default_rng(0).standard_normal(wav.shape).astype(np.float32)
    noise *= np.sqrt(np.mean(wav**2) / np.mean(noise**2))
    return (wav + noise)[None], wav


@pytest.mark.parametrize(("inference", "n_iter", "gain"), [("mcem", 20, 4.5), ("grad", 10, 2.5)])
def test_vae_nmf_through_separate(noisy_speech, inference, n_iter, gain):
    """Single-channel VAE-NMF via the registry, 2 noise bases: measured SDR gains 6.5 dB
    (MCEM) and 3.9 dB (gradient MAP, which loses ground with more iterations here)."""
    mix, speech = noisy_speech
    res = separate(mix, "vae-nmf", n_src=1, n_iter=n_iter, inference=inference, n_components=2)
    assert res.sources.shape == (1, 1, mix.shape[1]) and res.noise.shape == mix.shape
    assert res.objective.shape == (1, n_iter + 1) and math.isnan(float(res.objective[0, 0]))
    assert torch.isfinite(res.objective[0, 1:]).all()
    torch.testing.assert_close(res.sources[0] + res.noise, torch.as_tensor(mix), atol=1e-4, rtol=0)
    base = bss_eval(speech[None], mix).sdr.mean()
    sdr = bss_eval(speech[None], res.sources[0].numpy()).sdr.mean()
    assert sdr > base + gain, (sdr, base)


def test_vae_nmf_refuses_multichannel_and_more_talkers(noisy_speech, speech_mix):
    with pytest.raises(
        VaeAudioError, match=r"single-channel.*4 channels.*mixture\[\.\.\., :1, :\]"
    ):
        separate(speech_mix[0], "vae-nmf", n_src=1, n_iter=1)
    with pytest.raises(VaeAudioError, match="n_src=1"):
        separate(noisy_speech[0], "vae-nmf", n_src=2, n_iter=1)
