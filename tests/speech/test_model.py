"""Speech VAE: loss against independent references, overfitting, STFT guard."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from vae_audio.audio.stft import StftConfig
from vae_audio.errors import VaeAudioError
from vae_audio.speech.model import SpeechVAE, SpeechVAEConfig
from vae_audio.speech.objective import speech_vae_loss


def _power(batch=3, n_freq=33, n_frames=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n_freq, n_frames, 2, generator=g)
    return x.pow(2).sum(-1), x  # |x|² [B, F, T] and its real/imag parts


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_loss_matches_independent_complex_gaussian_and_kl(arch):
    torch.manual_seed(0)
    cfg = SpeechVAEConfig(arch=arch, n_freq=33, latent_dim=4, hidden=16)
    model = SpeechVAE(cfg, StftConfig(n_fft=64, hop_length=16))
    power, parts = _power()
    out = model(power)
    loss = speech_vae_loss(power, out, beta=0.7)

    # Reference: real and imaginary parts are independent N(0, λ/2) (circular complex Gaussian).
    lam = out.psd + 1e-8
    std = (lam / 2).sqrt()
    ref_nll = -(Normal(0.0, std).log_prob(parts[..., 0]) + Normal(0.0, std).log_prob(parts[..., 1]))
    ref_nll = ref_nll.sum(1).mean()  # sum F, mean B T
    q = Independent(Normal(out.posterior.mean, out.posterior.std), 1)
    p = Independent(Normal(torch.zeros_like(out.posterior.mean), 1.0), 1)
    ref_kl = kl_divergence(q, p).mean()
    ref_is = (power / lam - torch.log(power / lam) - 1).sum(1).mean()

    torch.testing.assert_close(loss.nll, ref_nll, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(loss.kl, ref_kl, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss.loss, ref_nll + 0.7 * ref_kl, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(loss.is_div, ref_is, rtol=1e-4, atol=1e-3)
    # IS divergence = NLL − Σ_f (log π|x|² + 1): the model-free offset, per frame.
    offset = (torch.log(math.pi * power) + 1).sum(1).mean()
    torch.testing.assert_close(loss.nll - loss.is_div, offset, rtol=1e-4, atol=1e-2)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_tiny_model_overfits_a_batch(arch):
    torch.manual_seed(0)
    cfg = SpeechVAEConfig(arch=arch, n_freq=33, latent_dim=4, hidden=32)
    model = SpeechVAE(cfg, StftConfig(n_fft=64, hop_length=16))
    # Low-rank structured "spectra": a few spectral shapes with random activations.
    shapes = torch.rand(3, 33, 1) * 4
    act = torch.rand(4, 3, 1, 20)
    power = (shapes * act).sum(1) * torch.distributions.Exponential(1.0).sample((4, 33, 20))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(300):
        loss = speech_vae_loss(power, model(power), beta=1.0)
        opt.zero_grad()
        loss.loss.backward()
        opt.step()
        first = loss.is_div.item() if first is None else first
    assert loss.is_div.item() < 0.5 * first


def test_decoder_is_positive_and_framewise():
    torch.manual_seed(0)
    model = SpeechVAE(SpeechVAEConfig(n_freq=33, latent_dim=4), StftConfig(n_fft=64, hop_length=16))
    z = torch.randn(2, 5, 9, 4) * 10  # [B, N, T, D]
    psd = model.decode(z)
    assert psd.shape == (2, 5, 33, 9) and bool((psd > 0).all())
    # Frame-wise: changing frame 3 changes only column 3.
    z2 = z.clone()
    z2[..., 3, :] += 1.0
    diff = (model.decode(z2) - psd).abs().sum(dim=(0, 1, 2))
    assert diff[3] > 0 and torch.count_nonzero(diff) == 1


def test_mismatched_n_freq_is_refused():
    with pytest.raises(VaeAudioError, match="n_freq"):
        SpeechVAE(SpeechVAEConfig(n_freq=257), StftConfig(n_fft=1024))


def test_check_stft_names_the_difference():
    model = SpeechVAE(SpeechVAEConfig(n_freq=257), StftConfig())
    with pytest.raises(VaeAudioError, match="hop"):
        model.check_stft(StftConfig(hop_length=256), "speech prior 'x.pt'")
