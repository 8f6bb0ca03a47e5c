"""STFT/ISTFT: exact inversion, agreement with librosa, gradients, settings and their errors."""

import json

import librosa
import numpy as np
import pytest
import scipy.signal
import torch

from vae_audio.audio import ISTFT, STFT, StftConfig, istft, make_window, stft
from vae_audio.errors import VaeAudioError

# (n_fft, hop_length, win_length)
SETTINGS = [(512, 128, None), (256, 64, None), (400, 160, None), (512, 128, 400)]


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("n_fft,hop,win", SETTINGS)
@pytest.mark.parametrize("shape", [(4001,), (2, 3001), (2, 3, 2049)])
@pytest.mark.parametrize("window", ["hann", "sqrt-hann", "hamming", "blackman"])
def test_round_trip_center(n_fft, hop, win, shape, window):
    torch.manual_seed(0)
    cfg = StftConfig(n_fft=n_fft, hop_length=hop, win_length=win, window=window)
    x = torch.randn(shape)
    spec = STFT(cfg)(x)
    assert spec.shape == (*shape[:-1], cfg.n_freq, cfg.n_frames(shape[-1]))
    assert spec.is_complex()
    y = ISTFT(cfg)(spec, length=shape[-1])
    assert y.shape == x.shape
    assert _rel_err(y, x) < 1e-5


@pytest.mark.parametrize("n_fft,hop", [(512, 128), (256, 64), (400, 100)])
def test_round_trip_no_center(n_fft, hop):
    # Without centering every sample must be covered by a frame whose window is nonzero
    # there: hamming (nonzero at the edges) and S = n_fft + k * hop.
    torch.manual_seed(1)
    cfg = StftConfig(n_fft=n_fft, hop_length=hop, window="hamming", center=False)
    num_samples = n_fft + 17 * hop
    x = torch.randn(3, num_samples)
    spec = stft(x, cfg)
    assert spec.shape[-1] == cfg.n_frames(num_samples) == 18
    y = istft(spec, cfg, length=num_samples)
    assert _rel_err(y, x) < 1e-5


def _librosa_window(cfg: StftConfig):
    if cfg.window == "sqrt-hann":
        return np.sqrt(scipy.signal.get_window("hann", cfg.win_len, fftbins=True))
    return cfg.window


@pytest.mark.parametrize("n_fft,hop,win", SETTINGS)
@pytest.mark.parametrize("window", ["hann", "sqrt-hann", "hamming", "blackman"])
@pytest.mark.parametrize(
    "center,pad_mode", [(True, "reflect"), (True, "constant"), (False, "reflect")]
)
def test_matches_librosa(n_fft, hop, win, window, center, pad_mode):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3001)).astype(np.float32)
    cfg = StftConfig(
        n_fft=n_fft,
        hop_length=hop,
        win_length=win,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    ref = librosa.stft(
        x,
        n_fft=n_fft,
        hop_length=hop,
        win_length=win,
        window=_librosa_window(cfg),
        center=center,
        pad_mode=pad_mode,
    )  # [2, F, T]
    ours = stft(torch.from_numpy(x), cfg).numpy()
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-4 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("window", ["hann", "sqrt-hann"])
def test_istft_matches_librosa(window):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(4001).astype(np.float32)
    cfg = StftConfig(n_fft=256, hop_length=64, window=window)
    lwin = _librosa_window(cfg)
    spec = librosa.stft(x, n_fft=256, hop_length=64, window=lwin, pad_mode="reflect")
    ref = librosa.istft(spec, hop_length=64, window=lwin, length=4001)
    ours = istft(torch.from_numpy(spec), cfg, length=4001).numpy()
    assert np.abs(ours - ref).max() < 1e-5


@pytest.mark.parametrize("n_fft,hop,win", SETTINGS)
@pytest.mark.parametrize("center,window", [(True, "hann"), (True, "blackman"), (False, "hamming")])
@pytest.mark.parametrize("length", [None, 2000, 2300, 2700])
def test_istft_is_torch_istft_of_any_spectrogram(n_fft, hop, win, center, window, length):
    # a random spectrogram is no signal's STFT: only the least-squares overlap-add formula
    # itself (window, envelope, centring, trimming, padding) reproduces torch.istft's output
    torch.manual_seed(5)
    cfg = StftConfig(n_fft=n_fft, hop_length=hop, win_length=win, window=window, center=center)
    spec = torch.randn(2, 3, cfg.n_freq, 20, dtype=torch.complex128)
    args = (n_fft, hop, cfg.win_len, make_window(cfg, dtype=torch.float64))
    try:
        ref = torch.istft(spec.reshape(6, cfg.n_freq, 20), *args, center=center, length=length)
    except RuntimeError:  # an envelope that vanishes on the output: torch's error, both ways
        with pytest.raises(RuntimeError, match="window overlap add"):
            istft(spec, cfg, length=length)
        return
    ours = istft(spec, cfg, length=length)
    assert ours.shape == (2, 3, ref.shape[-1])
    torch.testing.assert_close(ours.reshape(6, -1), ref, rtol=1e-10, atol=1e-10)


def test_windows_match_scipy():
    for name in ("hann", "hamming", "blackman"):
        cfg = StftConfig(n_fft=64, hop_length=16, window=name)
        ref = scipy.signal.get_window(name, 64, fftbins=True)
        np.testing.assert_allclose(make_window(cfg).numpy(), ref, atol=1e-6)
    # sqrt-hann squared is hann; with hop = n_fft/2 its square overlap-adds to one.
    w = make_window(StftConfig(n_fft=64, hop_length=32, window="sqrt-hann"))
    np.testing.assert_allclose((w**2)[:32] + (w**2)[32:], np.ones(32), atol=1e-6)


def test_gradcheck_stft_and_istft():
    cfg = StftConfig(n_fft=16, hop_length=4, window="hann")
    x = torch.randn(2, 40, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: stft(a, cfg), (x,))
    spec = stft(x.detach(), cfg).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: istft(s, cfg, length=40), (spec,))


def test_gradients_flow_through_modules():
    torch.manual_seed(4)
    stft_mod, istft_mod = STFT(n_fft=128, hop_length=32), ISTFT(n_fft=128, hop_length=32)
    x = torch.randn(2, 1000, requires_grad=True)
    spec = stft_mod(x)
    loss = spec.abs().square().mean() + istft_mod(spec * 0.5, length=1000).square().mean()
    loss.backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def test_window_buffer_follows_module_and_is_not_saved():
    mod = STFT(n_fft=64, hop_length=16)
    assert "window" not in mod.state_dict()
    assert any(b is mod.window for b in mod.buffers())
    mod = mod.to(torch.float64)
    assert mod.window.dtype == torch.float64
    x = torch.randn(200, dtype=torch.float64)
    assert mod(x).dtype == torch.complex128
    if torch.cuda.is_available():
        mod = mod.to("cuda")
        assert mod.window.device.type == "cuda"
        y = mod(x.cuda())
        assert y.device.type == "cuda"


def test_config_round_trip():
    cfg = StftConfig(
        sample_rate=8000,
        n_fft=256,
        hop_length=64,
        win_length=200,
        window="sqrt-hann",
        center=False,
        pad_mode="constant",
    )
    d = json.loads(json.dumps(cfg.to_dict()))
    assert StftConfig.from_dict(d) == cfg
    assert StftConfig.from_dict({}) == StftConfig()
    assert StftConfig().n_freq == 257
    assert STFT(cfg, n_fft=512).config.n_fft == 512  # keyword overrides


def test_config_from_dict_unknown_key():
    with pytest.raises(VaeAudioError, match="unknown STFT settings.*'nfft'"):
        StftConfig.from_dict({"nfft": 512})


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"window": "kaiser"}, "unknown STFT window 'kaiser'"),
        ({"n_fft": 256, "win_length": 512}, "win_length=512 exceeds n_fft=256"),
        ({"n_fft": 256, "hop_length": 300}, "hop_length=300 exceeds"),
        ({"n_fft": 0}, "n_fft must be a positive integer"),
        ({"pad_mode": "mirror"}, "unknown STFT pad_mode"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(VaeAudioError, match=match):
        StftConfig(**kwargs)


def test_check_compatible():
    here = StftConfig(n_fft=512, hop_length=128)
    here.check_compatible(StftConfig(n_fft=512, hop_length=128, win_length=512), "model 'x.pt'")
    here.check_compatible(StftConfig(pad_mode="constant"), "model 'x.pt'")
    with pytest.raises(VaeAudioError) as err:
        here.check_compatible(StftConfig(n_fft=1024, hop_length=256), "model 'x.pt'")
    msg = str(err.value)
    assert "model 'x.pt'" in msg
    assert "n_fft=1024, hop_length=256" in msg  # what the model used
    assert "n_fft=512, hop_length=128" in msg  # what is used here
    assert "--n-fft 1024 --hop-length 256" in msg  # how to fix it
    assert "sample_rate" not in msg and "window" not in msg  # only what differs
    with pytest.raises(VaeAudioError, match="--no-center"):
        here.check_compatible(StftConfig(center=False), "model 'x.pt'")


def test_errors_for_bad_shapes():
    with pytest.raises(VaeAudioError, match="too short"):
        stft(torch.randn(100), StftConfig(n_fft=512))
    with pytest.raises(VaeAudioError, match="257"):
        istft(torch.zeros(2, 129, 10, dtype=torch.complex64), StftConfig(n_fft=512))
