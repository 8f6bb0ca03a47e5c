"""VAE-NMF and the NMF baseline on data sampled from their own generative model."""

import pytest
import torch

from vae_audio.audio.stft import StftConfig
from vae_audio.errors import VaeAudioError
from vae_audio.separation.nmf_enhance import is_nmf, learn_speech_basis, nmf_enhance
from vae_audio.separation.vae_nmf import VaeNmfConfig, vae_nmf
from vae_audio.speech.model import SpeechVAE, SpeechVAEConfig

F, T, D, K = 33, 48, 4, 2


def _complex_gaussian(psd, gen):
    re, im = torch.randn(psd.shape, generator=gen), torch.randn(psd.shape, generator=gen)
    return torch.complex(re, im) * (psd / 2).sqrt()


@pytest.fixture(scope="module")
def problem():
    """Speech ~ N_C(0, a_t g(z_t)) from a random decoder + NMF noise at 0 dB, B = 2."""
    torch.manual_seed(0)
    prior = SpeechVAE(
        SpeechVAEConfig(n_freq=F, latent_dim=D, hidden=32), StftConfig(n_fft=64, hop_length=16)
    )
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        speech_psd = prior.decode(torch.randn(2, T, D, generator=gen))
    speech_psd = speech_psd * (torch.rand(2, 1, T, generator=gen) + 0.5)
    w, h = torch.rand(2, F, K, generator=gen), torch.rand(2, K, T, generator=gen) + 1
    noise_psd = w @ h
    noise_psd = noise_psd * speech_psd.sum((1, 2), keepdim=True) / noise_psd.sum((1, 2), True)
    s, n = _complex_gaussian(speech_psd, gen), _complex_gaussian(noise_psd, gen)
    return prior, s, n, speech_psd, noise_psd


def _snr_db(ref, est):
    return 10 * torch.log10(ref.abs().square().sum((1, 2)) / (est - ref).abs().square().sum((1, 2)))


@pytest.mark.parametrize("inference", ["mcem", "grad"])
def test_vae_nmf_enhances_and_lowers_its_objective(problem, inference):
    prior, s, n, speech_psd, noise_psd = problem
    x = s + n
    cfg = VaeNmfConfig(inference=inference, n_iter=15, n_components=K, mh_iters=8, mh_burn_in=4)
    result = vae_nmf(x, prior, cfg)
    mix_snr = _snr_db(s, x)
    oracle = _snr_db(s, speech_psd / (speech_psd + noise_psd) * x)
    est = _snr_db(s, result.speech)
    # At least a third of the oracle Wiener filter's improvement, on both files.
    assert bool(((est - mix_snr) > (oracle - mix_snr) / 3).all()), (mix_snr, est, oracle)
    assert bool((result.objective[-1] < result.objective[0]).all())
    torch.testing.assert_close(result.speech + result.noise, x)


def test_grad_inference_is_batch_independent(problem):
    prior, s, n, *_ = problem
    x = s + n
    cfg = VaeNmfConfig(inference="grad", n_iter=4, n_components=K)
    both = vae_nmf(x, prior, cfg)
    # NMF initialisation draws depend on the batch size; fix it by running each file alone
    # with the same per-file draws is not possible, so compare with identical duplicated input.
    dup = vae_nmf(torch.stack([x[0], x[0]]), prior, cfg)
    torch.testing.assert_close(
        dup.speech[0], vae_nmf(x[:1], prior, cfg).speech[0], rtol=1e-4, atol=1e-5
    )
    assert both.speech.shape == x.shape


def test_mismatched_frequency_bins_are_refused(problem):
    prior = problem[0]
    with pytest.raises(VaeAudioError, match="frequency bins"):
        vae_nmf(torch.zeros(1, F + 2, 5, dtype=torch.complex64), prior)


def test_is_nmf_monotone_and_nmf_baseline_enhances(problem):
    _, s, n, speech_psd, noise_psd = problem
    gen = torch.Generator().manual_seed(3)
    basis = learn_speech_basis(speech_psd[0] * torch.rand(F, T, generator=gen), 6, n_iter=50)
    assert basis.shape == (F, 6) and bool((basis >= 0).all())
    result = nmf_enhance(s + n, basis, n_noise_components=K, n_iter=40)
    diffs = result.objective[1:] - result.objective[:-1]
    assert bool((diffs <= 1e-5 * result.objective[:-1].abs()).all())
    w, h = is_nmf(speech_psd, 4, n_iter=30)
    torch.testing.assert_close(w.sum(1), torch.ones(2, 4))
