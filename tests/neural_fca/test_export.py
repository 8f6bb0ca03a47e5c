"""TorchScript export of the amortised separator against the PyTorch path, shipped models as
separators, hub entry points, and byte-identical exports."""

from __future__ import annotations

import importlib
import json
import zipfile
from pathlib import Path

import pytest
import soundfile as sf
import torch

import vae_audio
from vae_audio.audio.stft import istft, stft
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca import NeuralFCA, fit_neural_fca, load_neural_fca, save_neural_fca
from vae_audio.neural_fca.export import (
    AmortisedSeparator,
    export_separator,
    load_separator,
    trace_separator,
)
from vae_audio.separation.linalg import frequency_blocks

from .conftest import tiny_model

ROOT = Path(__file__).resolve().parents[2]


def pytorch_path(model: NeuralFCA, wav: torch.Tensor) -> torch.Tensor:
    """Amortised separation as ``separate(..., n_iter=0)`` computes it: ``[B, N, M, S]``."""
    x = stft(wav, model.stft_config)  # [B, M, F, T]
    with torch.no_grad():
        fit = fit_neural_fca(x, model)
    return istft(fit.images(x), model.stft_config, length=wav.shape[-1])


def noisy_mixture(B: int, M: int, S: int, seed: int = 1) -> torch.Tensor:
    """Two low-passed sources with different mic gains plus noise: ``[B, M, S]``."""
    g = torch.Generator().manual_seed(seed)
    src = torch.cumsum(torch.randn(B, 2, S, generator=g), -1)  # [B, 2, S] brown noise
    src = src - src.mean(-1, keepdim=True)
    gains = torch.rand(B, 2, M, 1, generator=g) + 0.2  # [B, 2, M, 1]
    mix = (gains * src[:, :, None]).sum(1)  # [B, M, S]
    mix = mix / mix.std() * 0.1
    return mix + 0.01 * torch.randn(B, M, S, generator=g)


@pytest.fixture(scope="module")
def shipped():
    return vae_audio.pretrained("neural-fca")


@pytest.fixture(scope="module")
def shipped_traced(shipped):
    return trace_separator(shipped)


@pytest.mark.parametrize("spatial", ["full", "jd"])
def test_traced_tiny_model_matches_pytorch_on_other_batch_and_length(spatial):
    model = tiny_model(spatial=spatial, gain=True)
    traced = trace_separator(model, seconds=1.0)  # traced on [1, 4, 16000]
    wav = noisy_mixture(B=2, M=4, S=777)
    expected = pytorch_path(model, wav)  # [2, 3, 4, 777]
    with torch.no_grad():
        got = traced(wav)
    assert got.shape == expected.shape == (2, 3, 4, 777)
    scale = expected.abs().max()
    assert scale > 0
    torch.testing.assert_close(got, expected, atol=1e-5 * float(scale), rtol=1e-4)
    # the images explain the mixture (Wiener filter: they sum to it up to the STFT round trip)
    torch.testing.assert_close(got.sum(1), wav, atol=1e-3 * float(wav.abs().max()), rtol=0)


def test_traced_model_serves_batches_larger_than_its_examples_blocks(monkeypatch):
    """Ops that work in blocks of rows (the packed outer products, the inverse STFT) trace
    as one block: blocks sized for the example would cut a larger batch short."""
    stft_module = importlib.import_module("vae_audio.audio.stft")  # the package exports stft()
    linalg = importlib.import_module("vae_audio.separation.linalg")
    model = tiny_model(spatial="jd", gain=True)
    monkeypatch.setattr(linalg, "_OUTER_BLOCK", 1)  # a block per row when not tracing
    monkeypatch.setattr(stft_module, "_ISTFT_BLOCK", 1)
    traced = trace_separator(model, seconds=1.0)  # traced on [1, 4, 16000]
    wav = noisy_mixture(B=3, M=4, S=5000)
    expected = pytorch_path(model, wav)  # eager, block by block
    with torch.no_grad():
        got = traced(wav)
    assert got.shape == expected.shape == (3, 3, 4, 5000)
    scale = float(expected.abs().max())
    torch.testing.assert_close(got, expected, atol=1e-5 * scale, rtol=1e-4)


def test_traced_model_keeps_its_examples_frequency_blocks_at_any_length(monkeypatch):
    """The JD updates and the Wiener filter work in blocks of bins sized for the tracing
    example's length; the traced program keeps those blocks and gives the eager path's
    numbers on shorter and longer inputs and larger batches."""
    iss = importlib.import_module("vae_audio.neural_fca.iss")
    wiener = importlib.import_module("vae_audio.separation.wiener")
    model = tiny_model(spatial="jd", gain=True, jd_iterations=2)
    F, T = stft(torch.zeros(1, 1, 8000), model.stft_config).shape[-2:]
    monkeypatch.setattr(iss, "_JD_BLOCK", 3 * T * 16)  # 3 bins a block at the example's T
    monkeypatch.setattr(wiener, "_BLOCK", 2 * T * 12)  # 2 bins a block
    assert len(frequency_blocks(F, T * 16, iss._JD_BLOCK)) == 3
    assert len(frequency_blocks(F, T * 12, wiener._BLOCK)) == 5
    traced = trace_separator(model, seconds=0.5)  # traced on [1, 4, 8000]
    for B, S in ((1, 3000), (2, 20000)):
        wav = noisy_mixture(B=B, M=4, S=S, seed=S)
        expected = pytorch_path(model, wav)  # eager, in the blocks of its own length
        with torch.no_grad():
            got = traced(wav)
        scale = float(expected.abs().max())
        torch.testing.assert_close(got, expected, atol=1e-5 * scale, rtol=1e-4)


def test_tracing_example_must_hold_a_frame():
    with pytest.raises(VaeAudioError, match="at least one STFT frame"):
        trace_separator(tiny_model(spatial="jd"), seconds=0.0005)


def test_tracing_leaves_the_callers_model_untouched():
    model = tiny_model(spatial="jd")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace_separator(model)
    assert model.training and all(p.requires_grad for p in model.encoder.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_traced_shipped_model_matches_its_separate(shipped, shipped_traced):
    wav = noisy_mixture(B=1, M=4, S=8000, seed=3)[0]  # [4, S], 0.5 s at 16 kHz
    with torch.no_grad():
        got = shipped_traced(wav[None])[0]  # [3, 4, S]: talkers, noise
    torch.testing.assert_close(got, pytorch_path(shipped, wav[None])[0], atol=1e-6, rtol=1e-4)
    result = shipped.separate(wav, 16000, n_iter=0)
    assert result.sources.shape == (2, 4, 8000) and result.sample_rate == 16000
    torch.testing.assert_close(result.noise, got[2], atol=1e-6, rtol=1e-4)
    energy = got[:2].square().sum((1, 2))  # separate() orders talkers loudest first
    torch.testing.assert_close(result.sources, got[:2][energy.argsort(descending=True)],
                               atol=1e-6, rtol=1e-4)  # fmt: skip


def test_export_is_byte_identical_and_loads_with_its_settings(shipped, tmp_path):
    a = export_separator(shipped, tmp_path / "a" / "separator.pt")
    trace_separator(shipped)  # an unrelated trace in between must not rename classes
    b = export_separator(shipped, tmp_path / "b" / "other_name.pt")
    assert a.read_bytes() == b.read_bytes()
    # nothing in it depends on where the package or the output lives
    assert str(ROOT).encode() not in a.read_bytes() and str(tmp_path).encode() not in a.read_bytes()
    assert not [n for n in zipfile.ZipFile(a).namelist() if n.endswith(".debug_pkl")]
    module, settings = load_separator(b)
    assert settings["n_mics"] == 4 and settings["n_speakers"] == 2
    assert settings["sample_rate"] == 16000 and settings["model"]["spatial"] == "jd"
    wav = noisy_mixture(B=1, M=4, S=4000, seed=5)
    with torch.no_grad():
        torch.testing.assert_close(module(wav), pytorch_path(shipped, wav), atol=1e-6, rtol=1e-4)


def test_load_separator_refuses_other_files(tmp_path):
    path = tmp_path / "model.pt"
    save_neural_fca(path, tiny_model())
    with pytest.raises(VaeAudioError, match="not a TorchScript separator"):
        load_separator(path)


def test_model_file_exports_are_byte_identical(tmp_path):
    model = tiny_model(spatial="jd")
    a = save_neural_fca(tmp_path / "run1" / "model.pt", model, {"step": 3})
    b = save_neural_fca(tmp_path / "run2" / "exported.pt", model, {"step": 3})
    assert a.read_bytes() == b.read_bytes()
    # the archive's entries do not carry the (temporary) file name
    assert all(n.startswith("archive/") for n in zipfile.ZipFile(a).namelist())
    reloaded = load_neural_fca(b)
    for k, v in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[k], v)


def test_shipped_neural_fca_is_a_separator_with_a_card(shipped, tmp_path):
    assert isinstance(shipped, NeuralFCA) and not shipped.training
    card = shipped.card
    assert card.talkers == 2 and card.sample_rate == 16000 and "4-mic circular" in card.array
    assert any("5.06" in m for m in card.measured)  # the README's 24-mixture bench
    # another rate: resampled in and out, same length
    wav8k = noisy_mixture(B=1, M=4, S=4000, seed=7)[0]
    res = shipped.separate(wav8k, 8000, n_iter=0)
    assert res.sources.shape == (2, 4, 4000) and res.noise.shape == (4, 4000)
    assert res.sample_rate == 8000 and bool(torch.isfinite(res.sources).all())
    # a file gives what its waveform gives
    wav = noisy_mixture(B=1, M=4, S=6000, seed=8)[0]
    sf.write(tmp_path / "mix.wav", wav.T.numpy(), 16000, subtype="FLOAT")
    from_file = shipped.separate_file(tmp_path / "mix.wav", n_iter=0)
    torch.testing.assert_close(from_file.sources, shipped.separate(wav, 16000, n_iter=0).sources)
    with pytest.raises(VaeAudioError, match="4-channel"):
        shipped.separate(wav[:2], 16000)


def test_speech_prior_keeps_its_type_and_gets_a_card():
    from vae_audio.speech.model import SpeechVAE

    prior = vae_audio.pretrained("speech-vae")
    assert type(prior) is SpeechVAE and prior.card.name == "speech-vae"
    assert prior.card.talkers is None and prior.card.sample_rate == prior.stft_config.sample_rate


def test_torch_hub_loads_the_shipped_models_from_the_repository():
    model = torch.hub.load(str(ROOT), "neural_fca", source="local")
    assert isinstance(model, NeuralFCA) and model.card.name == "neural-fca"
    prior = torch.hub.load(str(ROOT), "speech_vae", source="local")
    assert prior.card.name == "speech-vae"
    prior = torch.hub.load(str(ROOT), "speech_vae_conv", source="local")
    assert prior.card.name == "speech-vae-conv" and prior.config.arch == "conv"
    prior = torch.hub.load(str(ROOT), "speech_vae_conv16", source="local")
    assert prior.card.name == "speech-vae-conv16" and prior.config.arch == "conv"


def test_models_command_prints_every_card(capsys):
    from vae_audio.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("neural-fca", "speech-vae", "speech-vae-conv", "speech-vae-conv16"):
        assert f"{name}: " in out and f'vae_audio.pretrained("{name}")' in out
    assert "known limits:" in out and "16000 Hz" in out
    assert main(["models", "no-such-model"]) == 2
    assert "no shipped model named 'no-such-model'" in capsys.readouterr().err


def test_settings_json_is_plain(shipped, tmp_path):
    path = export_separator(shipped, tmp_path / "s.pt")
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("extra/model.json"))
        assert json.loads(z.read(name))["stft"]["n_fft"] == 512


def test_amortised_separator_is_the_pytorch_path(shipped):
    wav = noisy_mixture(B=1, M=4, S=3000, seed=9)
    with torch.no_grad():
        eager = AmortisedSeparator(shipped)(wav)
    torch.testing.assert_close(eager, pytorch_path(shipped, wav), atol=1e-6, rtol=1e-5)
