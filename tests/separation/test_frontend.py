"""WPE front end: against nara_wpe's numpy reference, late-reverberation reduction on a
simulated reverberant 2-mic signal, near-identity on a dry one, the ``separate(wpe=...)``
option (recorded, run inside each chunk) and the one-line error without nara_wpe."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from vae_audio.errors import VaeAudioError
from vae_audio.separation import api, separate
from vae_audio.separation.frontend import WpeConfig, dereverberate, wpe_config, wpe_stft

SR = 16000
EARLY_S = 0.05  # direct path + early reflections: the first 50 ms of the RIR


def _speech_like(S: int, g: torch.Generator) -> torch.Tensor:
    """Coloured noise under a syllable-like on/off envelope (125-ms segments) -> ``[S]``:
    non-stationary, as WPE's power weighting needs."""
    seg = SR // 8
    env = torch.rand(S // seg + 1, generator=g, dtype=torch.float64).pow(3)
    env = env.repeat_interleave(seg)[:S]
    env = AF.fftconvolve(env, torch.hann_window(401, dtype=torch.float64) / 200)[200 : 200 + S]
    white = torch.randn(S + 1, generator=g, dtype=torch.float64)
    return (white[1:] + 0.9 * white[:-1]) * env  # first-order low-pass colouring


def _rirs(M: int, rt60: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Exponentially decaying random RIRs ``[M, L]`` (−60 dB after ``rt60`` s) with a direct
    path at sample 40 + 3m, and their first ``EARLY_S`` seconds from the direct path."""
    L = int(rt60 * SR)
    t = torch.arange(L, dtype=torch.float64) / SR
    h = torch.randn(M, L, generator=g, dtype=torch.float64) * torch.exp(-6.9 * t / rt60)
    early = torch.zeros_like(h)
    for m in range(M):
        d = 40 + 3 * m
        h[m, :d], h[m, d] = 0.0, 8.0
        early[m, : d + int(EARLY_S * SR)] = h[m, : d + int(EARLY_S * SR)]
    return h, early


def _sdr(ref: torch.Tensor, est: torch.Tensor) -> float:
    """Plain SDR in dB (no projection: WPE does not rescale), summed over mics and samples."""
    return float(10 * torch.log10(ref.square().sum() / (ref - est).square().sum()))


@pytest.fixture(scope="module")
def reverberant():
    """``(mixture [M, S], direct+early image [M, S], dry image [M, S])``, 2 mics, 4 s,
    RT60 0.6 s, float64."""
    g = torch.Generator().manual_seed(0)
    S, M = 4 * SR, 2
    s = _speech_like(S, g)
    h, early = _rirs(M, 0.6, g)
    y = AF.fftconvolve(s.expand(M, -1), h)[:, :S]  # [M, S]
    e = AF.fftconvolve(s.expand(M, -1), early)[:, :S]  # [M, S]
    direct = torch.zeros_like(h)
    direct[torch.arange(M), 40 + 3 * torch.arange(M)] = 8.0
    dry = AF.fftconvolve(s.expand(M, -1), direct)[:, :S]  # [M, S]
    return y, e, dry


@pytest.mark.parametrize("block_bytes", [None, 1])
def test_matches_numpy_reference(block_bytes, monkeypatch):
    """Batched over F (all bins at once, or one bin per call) and B in torch == nara_wpe's
    numpy per-bin loop (float64)."""
    from nara_wpe.wpe import wpe_v8

    from vae_audio.separation import frontend

    if block_bytes is not None:
        monkeypatch.setattr(frontend, "_BLOCK_BYTES", block_bytes)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(2, 3, 5, 80, dtype=torch.complex128, generator=g)  # [B, M, F, T]
    Z = wpe_stft(X, taps=4, delay=2, iterations=2)
    for b in range(2):
        ref = wpe_v8(X[b].transpose(0, 1).numpy(), taps=4, delay=2, iterations=2)  # [F, M, T]
        np.testing.assert_allclose(Z[b].transpose(0, 1).numpy(), ref, rtol=1e-8, atol=1e-10)


def test_reduces_late_reverberation(reverberant):
    y, early, _ = reverberant
    z = dereverberate(y.float(), SR).double()  # [M, S]
    before, after = _sdr(early, y), _sdr(early, z)
    assert after > before + 2.0, (before, after)  # measured 3.5 -> 6.1 dB
    # at every mic the late part (all but the first 50 ms of the RIR) loses over 30 % of its
    # energy (measured 39 %)
    late_in = (y - early).square().sum(-1)  # [M]
    late_out = (z - early).square().sum(-1)  # [M]
    assert (late_out < 0.7 * late_in).all(), late_out / late_in


def test_dry_signal_changes_little(reverberant):
    _, _, dry = reverberant
    g = torch.Generator().manual_seed(2)
    dry = dry + 1e-3 * dry.std() * torch.randn(dry.shape, generator=g, dtype=dry.dtype)
    z = dereverberate(dry.float()[None], SR)[0].double()  # batched input [1, M, S]
    assert _sdr(dry, z) > 15.0  # sensor noise 60 dB down; measured 18.8 dB


def test_config_defaults_per_rate_and_errors():
    assert WpeConfig().stft(16000).n_fft == 512 and WpeConfig().stft(16000).hop_length == 128
    assert WpeConfig().stft(8000).n_fft == 256 and WpeConfig().stft(48000).n_fft == 2048
    assert wpe_config(False) is None and wpe_config(True) == WpeConfig()
    assert wpe_config({"taps": 5}).taps == 5
    with pytest.raises(VaeAudioError, match="unknown WPE setting"):
        wpe_config({"tap": 5})
    with pytest.raises(VaeAudioError, match="taps must be an integer"):
        WpeConfig(taps=0)
    with pytest.raises(VaeAudioError, match="more than delay"):
        wpe_stft(torch.ones(1, 2, 3, 10, dtype=torch.complex64))


def test_silent_input_passes_through():
    x = torch.zeros(1, 2, SR // 2)
    assert torch.equal(dereverberate(x, SR), x)


def test_separate_records_wpe_and_runs_per_chunk(reverberant, monkeypatch):
    y = reverberant[0][:, : 3 * SR].float()
    calls = []
    real = api.dereverberate

    def counting(chunk, sr, cfg):
        calls.append(chunk.shape[-1])
        return real(chunk, sr, cfg)

    monkeypatch.setattr(api, "dereverberate", counting)
    res = separate(y, n_src=1, sr=SR, n_iter=2, wpe={"taps": 8}, chunk_seconds=1.5,
                   overlap_seconds=0.5)  # fmt: skip
    assert res.settings["wpe"] == {"taps": 8, "delay": 3, "iterations": 3, "n_fft": 512,
                                   "hop_length": 128}  # fmt: skip
    assert len(calls) == 3 and max(calls) < y.shape[-1]  # inside each of the 3 chunks
    assert res.timings["wpe"] > 0
    plain = separate(y, n_src=1, sr=SR, n_iter=2)
    assert plain.settings["wpe"] is None and "wpe" not in plain.timings


def test_missing_nara_wpe_is_one_line(monkeypatch, reverberant):
    monkeypatch.setitem(sys.modules, "nara_wpe", None)
    monkeypatch.setitem(sys.modules, "nara_wpe.torch_wpe", None)
    with pytest.raises(VaeAudioError) as err:
        separate(reverberant[0][:, :SR].float(), n_src=1, sr=SR, n_iter=1, wpe=True)
    message = str(err.value)
    assert "pip install 'vae_audio[wpe]'" in message and "\n" not in message
