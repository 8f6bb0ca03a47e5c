"""separate(): shapes, invariants (images add up to the mixture, energy order, monotone
objective), batching, the method registry and the user-facing errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_audio.audio import StftConfig, istft
from vae_audio.audio import stft as stft_transform
from vae_audio.errors import VaeAudioError
from vae_audio.separation import METHODS, MethodSpec, SeparationResult, register_method, separate
from vae_audio.separation.api import diffuseness_rank
from vae_audio.separation.fastmnmf import fit_fastmnmf

from .conftest import random_psd, speech_like

SR = 8000
CFG = StftConfig(sample_rate=SR, n_fft=256, hop_length=64)


@pytest.fixture(scope="module")
def mix():
    return speech_like(M=3, seconds=0.75, sr=SR, seed=3, snr_db=20)[0].astype(np.float32)


@pytest.mark.parametrize("method", ["fastmnmf2", "fastmnmf", "mnmf", "fca"])
def test_result_shapes_and_invariants(mix, method):
    res = separate(mix, method, n_src=2, sr=SR, stft=CFG, n_iter=6)
    assert isinstance(res, SeparationResult) and res.method == method
    M, S = mix.shape
    assert res.sources.shape == (2, M, S) and res.noise.shape == (M, S)
    assert res.objective.shape == (1, 7)
    assert (res.objective.diff() >= -1e-5 * res.objective[:, 1:].abs()).all()
    # Wiener images of all slots add up to the mixture (up to the ε floor and ISTFT)
    total = res.sources.sum(0) + res.noise
    assert (total - torch.as_tensor(mix)).square().sum() / np.square(mix).sum() < 1e-4
    energy = res.sources.square().sum((1, 2))
    assert energy[0] >= energy[1]
    assert set(res.timings) == {"stft", "fit", "wiener", "istft", "total"}
    assert res.settings["n_iter"] == 6 and res.settings["stft"]["n_fft"] == 256


def test_batched_equals_one_by_one(mix):
    other = speech_like(M=3, seconds=0.75, sr=SR, seed=4)[0].astype(np.float32)
    kw = {"n_src": 2, "sr": SR, "stft": CFG, "n_iter": 5}
    both = separate(np.stack([mix, other]), **kw)
    assert both.sources.shape == (2, 2, 3, mix.shape[1])
    assert both.objective.shape == (2, 1, 6)
    for b, m in enumerate((mix, other)):
        one = separate(torch.as_tensor(m), **kw)
        scale = one.sources.abs().max()
        assert torch.allclose(both.sources[b], one.sources, atol=1e-4 * scale)  # float32
        assert torch.allclose(both.objective[b], one.objective, rtol=1e-4)


def test_without_noise_slot_and_float64(mix):
    res = separate(
        mix.astype(np.float64),
        n_src=3,
        sr=SR,
        stft=CFG,
        n_iter=4,
        noise_slot=False,
        dtype=torch.float64,
    )
    assert res.noise is None and res.sources.shape == (3, 3, mix.shape[1])
    assert res.sources.dtype == torch.float64
    assert torch.allclose(
        res.sources.sum(0), torch.as_tensor(mix, dtype=torch.float64), atol=1e-3 * np.abs(mix).max()
    )


def test_fastmnmf2_noise_slot_comes_from_its_start(mix):
    """With a noise slot fastmnmf2 defaults to ``init="noise"`` and drops the slot the start
    made the noise (not the most diffuse one); without one, or when the caller picks the
    start, the default does not apply."""
    kw = {"n_src": 2, "sr": SR, "stft": CFG, "n_iter": 5, "dtype": torch.float64}
    res = separate(mix, "fastmnmf2", **kw)
    assert res.settings["init"] == "noise"
    X = torch.as_tensor(mix, dtype=torch.float64)[None]  # [1, M, S]
    fit = fit_fastmnmf(stft_transform(X, CFG), 3, n_iter=5, init="noise")
    images = fit.images(stft_transform(X, CFG))  # [1, 3, M, F, T]
    noise = istft(images[:, 2], CFG, length=mix.shape[-1])[0]  # [M, S]: the last slot
    assert torch.allclose(res.noise, noise, atol=1e-6 * np.abs(mix).max())
    assert "init" not in separate(mix, "fastmnmf2", noise_slot=False, **kw).settings
    assert separate(mix, "fastmnmf2", init="twostep", **kw).settings["init"] == "twostep"


def test_diffuseness_rank_tells_point_sources_from_isotropic_noise():
    gen = torch.Generator().manual_seed(0)
    point = random_psd((1, 1, 6), 4, rank=1, load=1e-3, generator=gen)
    diffuse = torch.eye(4, dtype=torch.complex128).expand(1, 1, 6, 4, 4)
    rank = diffuseness_rank(torch.cat([point, diffuse, point], 1))  # [1, 3]
    assert rank.argmin() == 1
    assert torch.allclose(rank[0, 1], torch.tensor(0.25, dtype=torch.float64))
    assert rank[0, 0] > 0.99


def test_registered_method_is_used_and_noise_index_respected(mix):
    class Oracle:
        """Splits the mixture 0.6 / 0.3 / 0.1 and names slot 0 the noise."""

        log_likelihood = torch.zeros(1, 1)
        noise_index = torch.tensor([0])

        def images(self, x):
            w = torch.tensor([0.6, 0.3, 0.1], dtype=x.real.dtype)
            return w[None, :, None, None, None] * x[:, None]

        def scm(self):
            return None

    register_method("test-oracle", MethodSpec(lambda x, n, it, seed, cb, **o: Oracle()))
    try:
        with pytest.raises(VaeAudioError, match="already registered"):
            register_method("test-oracle", MethodSpec(lambda *a, **k: None))
        res = separate(mix, "test-oracle", n_src=2, sr=SR, stft=CFG)
        assert torch.allclose(res.noise, 0.6 * torch.as_tensor(mix), atol=1e-5)
        assert torch.allclose(res.sources[0], 0.3 * torch.as_tensor(mix), atol=1e-5)
        assert torch.allclose(res.sources[1], 0.1 * torch.as_tensor(mix), atol=1e-5)
    finally:
        METHODS.pop("test-oracle")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "ilrma"}, "unknown separation method"),
        ({"mixture": np.zeros(1000, dtype=np.float32)}, r"\[M, S\]"),
        ({"mixture": np.zeros((1, 1000), dtype=np.float32)}, "multichannel"),
        ({"mixture": np.zeros((1000, 3), dtype=np.float32)}, "transpose"),
        ({"mixture": np.zeros((3, 1000), dtype=np.int16)}, "floating-point"),
        ({"mixture": np.full((3, 1000), np.nan, dtype=np.float32)}, "NaN"),
        ({"mixture": [[0.0] * 10] * 3}, "numpy array"),
        ({"n_src": 0}, "n_src"),
        ({"n_src": 1.5}, "n_src"),
        ({"sr": 16000}, "sample_rate"),
        ({"chunk_seconds": -1.0}, "chunk_seconds"),
        ({"chunk_seconds": 0.1, "overlap_seconds": 0.08}, "overlap"),
        ({"dtype": torch.float16}, "dtype"),
        ({"n_bases": 4}, "no option"),
        ({"n_iter": -1}, "n_iter"),
        ({"mixture": np.zeros((3, 50), dtype=np.float32)}, "too short"),
    ],
)
def test_errors(mix, kwargs, match):
    args = {"mixture": mix, "n_src": 2, "sr": SR, "stft": CFG, "n_iter": 1, **kwargs}
    with pytest.raises(VaeAudioError, match=match):
        separate(**args)


@pytest.mark.parametrize("method", ["fastmnmf2", "mnmf", "fca"])
def test_digital_silence_gives_silence(mix, method):
    """A silent stretch (here: a silent chunk and a silent input) must not produce NaN."""
    x = mix.copy()
    x[:, 2000:4500] = 0.0
    res = separate(x, method, sr=SR, stft=CFG, n_iter=3, chunk_seconds=0.3, overlap_seconds=0.05)
    assert torch.isfinite(res.sources).all() and torch.isfinite(res.noise).all()
    silent = separate(np.zeros_like(mix), method, sr=SR, stft=CFG, n_iter=3)
    assert torch.isfinite(silent.objective).all()
    assert silent.sources.abs().max() == 0 and silent.noise.abs().max() == 0


@pytest.mark.parametrize("method", ["vae-fastfca", "vae-fca", "vae-nmf"])
def test_prior_methods_refuse_a_rate_or_stft_the_prior_was_not_made_for(method):
    """48 kHz with a 512-point STFT gives the prior's 257 bins too: without a check the 16-kHz
    prior would silently model 48-kHz spectra."""
    if method not in METHODS:
        pytest.skip(f"{method} is not registered")
    x = torch.randn(1 if method == "vae-nmf" else 2, 8000)
    with pytest.raises(VaeAudioError, match="made for 16000 Hz but the mixture is at sr=48000"):
        separate(x, method, n_src=1, sr=48000, n_iter=1)
    stft = StftConfig(sample_rate=16000, n_fft=1024, hop_length=256)
    with pytest.raises(VaeAudioError, match="made with n_fft=512, hop_length=128.*pass stft="):
        separate(x, method, n_src=1, sr=16000, stft=stft, n_iter=1)


def test_a_method_default_option_is_used_and_checked_unless_given(tmp_path, monkeypatch):
    """``MethodSpec.defaults`` fill options the caller left out before the STFT check: with an
    8-kHz prior as vae-nmf's default, a 16-kHz call is refused and an 8-kHz call runs it; a
    prior passed by the caller wins."""
    import dataclasses

    from vae_audio.speech.model import SpeechVAE, SpeechVAEConfig
    from vae_audio.speech.prior import save_speech_prior

    if "vae-nmf" not in METHODS:
        pytest.skip("vae-nmf is not registered")
    torch.manual_seed(0)
    net = SpeechVAE(SpeechVAEConfig(n_freq=CFG.n_freq, latent_dim=4, hidden=16), CFG)
    path = save_speech_prior(tmp_path / "p8k.pt", net)
    spec = dataclasses.replace(METHODS["vae-nmf"], defaults={"prior": str(path)})
    monkeypatch.setitem(METHODS, "vae-nmf", spec)
    x = torch.randn(1, 8000)
    with pytest.raises(VaeAudioError, match="made for 8000 Hz but the mixture is at sr=16000"):
        separate(x, "vae-nmf", n_src=1, sr=16000, n_iter=1)
    res = separate(x, "vae-nmf", n_src=1, sr=SR, stft=CFG, n_iter=1)
    assert torch.isfinite(res.sources).all()
    with pytest.raises(VaeAudioError, match="made for 16000 Hz but the mixture is at sr=8000"):
        separate(x, "vae-nmf", n_src=1, sr=SR, stft=CFG, n_iter=1, prior="speech-vae")
