"""Multichannel features against closed forms: log power, IPD phasors, silent bins."""

import math

import pytest
import torch

from vae_audio.audio import STFT, ipd_features, ipd_phasors, log_power, power_spectrogram
from vae_audio.errors import VaeAudioError


def _random_spec(*shape: int) -> torch.Tensor:
    return torch.complex(torch.randn(shape), torch.randn(shape))


def test_log_power_closed_form():
    torch.manual_seed(0)
    mag = torch.rand(2, 3, 5, 7) * 10 + 0.1
    phase = (torch.rand(2, 3, 5, 7) - 0.5) * 2 * math.pi
    spec = torch.polar(mag, phase)
    torch.testing.assert_close(power_spectrogram(spec), mag**2, rtol=1e-5, atol=0)
    torch.testing.assert_close(log_power(spec, eps=1e-3), torch.log(mag**2 + 1e-3))
    zero = log_power(torch.zeros(1, 1, 2, 2, dtype=torch.complex64), eps=1e-10)
    torch.testing.assert_close(zero, torch.full((1, 1, 2, 2), math.log(1e-10)))


@pytest.mark.parametrize("ref", [0, 2, -1])
def test_ipd_of_known_phase_shifts(ref):
    # x_m = g_m e^{i phi_m} s  =>  x_m x_ref^* / |x_m x_ref^*| = e^{i (phi_m - phi_ref)}.
    torch.manual_seed(1)
    batch, mics, freqs, frames = 2, 4, 9, 11
    source = _random_spec(batch, 1, freqs, frames)
    phi = (torch.rand(batch, mics, freqs, 1) - 0.5) * 2 * math.pi
    gain = torch.rand(1, mics, 1, 1) + 0.5
    spec = gain * torch.polar(torch.ones_like(phi), phi) * source  # [B, M, F, T]
    r = ref % mics
    others = [m for m in range(mics) if m != r]
    delta = phi[:, others] - phi[:, r : r + 1]  # [B, M-1, F, 1]
    expected = torch.polar(torch.ones_like(delta), delta)
    got = ipd_phasors(spec, ref=ref)
    assert got.shape == (batch, mics - 1, freqs, frames)
    torch.testing.assert_close(got, expected.expand_as(got), atol=1e-5, rtol=0)
    feats = ipd_features(spec, ref=ref)
    assert feats.shape == (batch, 2 * (mics - 1), freqs, frames)
    delta = delta.expand(-1, -1, -1, frames)  # [B, M-1, F, T]
    torch.testing.assert_close(feats[:, : mics - 1], torch.cos(delta), atol=1e-5, rtol=0)
    torch.testing.assert_close(feats[:, mics - 1 :], torch.sin(delta), atol=1e-5, rtol=0)


def test_ipd_unit_modulus():
    torch.manual_seed(2)
    got = ipd_phasors(_random_spec(3, 5, 17, 13) * 1e-3)
    torch.testing.assert_close(got.abs(), torch.ones(3, 4, 17, 13), atol=1e-6, rtol=0)


def test_ipd_of_phase_shifted_sinusoids_through_stft():
    # Two microphones see cos(w n + phi_m) with w on bin k: the IPD at bin k is e^{i(phi_1-phi_0)}.
    n_fft, k, phis = 256, 20, (0.3, -1.9)
    n = torch.arange(4096, dtype=torch.float64)
    wav = torch.stack([torch.cos(2 * math.pi * k / n_fft * n + p) for p in phis])  # [M, S]
    spec = STFT(n_fft=n_fft, hop_length=64)(wav.float()[None])  # [1, 2, F, T]
    got = ipd_phasors(spec)[0, 0, k, 2:-2]  # [T-4]: frames that lie inside the signal
    expected = torch.polar(torch.ones(()), torch.tensor(phis[1] - phis[0]))
    torch.testing.assert_close(got, expected.expand_as(got), atol=1e-4, rtol=0)


def test_zero_bins_are_safe():
    spec = _random_spec(1, 3, 4, 5)
    spec[:, 0, 1] = 0  # silent reference bins
    spec[:, 2, 3] = 0  # silent bins in another channel
    spec.requires_grad_(True)
    phasors = ipd_phasors(spec)
    assert torch.isfinite(torch.view_as_real(phasors)).all()
    assert (phasors[:, :, 1] == 0).all()  # no phase where the reference is silent
    assert (phasors[:, 1, 3] == 0).all()
    torch.testing.assert_close(phasors[:, 0, 0].abs(), torch.ones(1, 5), atol=1e-6, rtol=0)
    feats = ipd_features(spec)
    (feats.sum() + log_power(spec).sum()).backward()
    assert torch.isfinite(torch.view_as_real(spec.grad)).all()


def test_single_channel_and_bad_input():
    assert ipd_features(_random_spec(2, 1, 3, 4)).shape == (2, 0, 3, 4)
    with pytest.raises(VaeAudioError, match="reference channel 3 does not exist"):
        ipd_phasors(_random_spec(1, 3, 2, 2), ref=3)
    with pytest.raises(VaeAudioError, match=r"complex \[B, M, F, T\]"):
        ipd_phasors(torch.randn(1, 3, 2, 2))
    with pytest.raises(VaeAudioError, match=r"complex \[B, M, F, T\]"):
        ipd_phasors(_random_spec(3, 2, 2))
