"""A Neural FastFCA model for any M (``n_mics: null``, TAC encoder) in `vae-audio separate`:
``auto`` picks it for every ``M >= 2`` with its talker count and says so, falls back as for
a fixed-M model otherwise, and the command separates 2- and 6-channel inputs with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.apps.conftest import MIXTURE, read, tiny_model_config
from vae_audio import cli
from vae_audio.apps import methods
from vae_audio.apps.inputs import InputItem
from vae_audio.apps.methods import AUTO_FALLBACK, SINGLE_CHANNEL, MethodResolver, choose_auto
from vae_audio.errors import VaeAudioError

pytestmark = pytest.mark.usefixtures("one_thread")

ALL = (SINGLE_CHANNEL, *AUTO_FALLBACK)
ANY_M = (None, (2,))  # (M, talker counts) of a model for any M >= 2 and 2 talkers


@pytest.fixture(scope="module")
def any_m_model_file(tmp_path_factory) -> Path:
    """A randomly initialised any-M Neural FastFCA model (TAC encoder, n_fft 16), saved."""
    from vae_audio.neural_fca import build_neural_fca, save_neural_fca

    torch.manual_seed(0)
    model = build_neural_fca(tiny_model_config(n_mics=None, kind="tac"))
    assert model.n_mics is None
    return save_neural_fca(tmp_path_factory.mktemp("any_m") / "model.pt", model)


def _write_input(path: Path, channels: int, seconds: float = 0.5) -> Path:
    """``channels`` channels of the 4-mic fixture mixture; past 4, delayed sums of its
    channels (distinct signals with the fixture's content)."""
    data, sr = sf.read(MIXTURE, dtype="float32")  # [S, 4]
    data = data[: int(seconds * sr)]
    extra = [np.roll(data[:, k % 4] + data[:, (k + 1) % 4], k + 1) / 2 for k in range(4)]
    data = np.concatenate([data, np.stack(extra, 1)], 1)[:, :channels]  # [S, M]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, subtype="FLOAT")
    return path


def _item(M: int) -> InputItem:
    return InputItem(Path(f"in{M}.wav"), f"in{M}", channels=M, frames=8000, sample_rate=16000)


@pytest.mark.parametrize("n_mics", [2, 4, 6])
@pytest.mark.parametrize("n_src", [None, 2])
def test_auto_picks_an_any_m_model_for_every_m(n_mics, n_src):
    choice = choose_auto(n_mics, n_src, ANY_M, ALL)
    assert (choice.method, choice.n_src) == ("neural", 2)
    assert choice.reason == (
        f"{n_mics} channels, 2 talkers: the Neural FCA model takes any M >= 2 and 2 talkers"
    )


@pytest.mark.parametrize("n_mics", [2, 4, 6])
@pytest.mark.parametrize("n_src", [1, 3, 4])
def test_auto_falls_back_for_talker_counts_the_any_m_model_does_not_take(n_mics, n_src):
    choice = choose_auto(n_mics, n_src, ANY_M, ALL)
    assert (choice.method, choice.n_src) == (AUTO_FALLBACK[0], n_src)
    assert choice.reason == (
        f"{n_mics} channels, {n_src} talker{'s' * (n_src > 1)}: the Neural FCA model takes any "
        f"M >= 2 but is made for 2 talkers; {AUTO_FALLBACK[0]} takes any"
    )


def test_one_channel_still_goes_to_the_single_channel_method():
    assert choose_auto(1, None, ANY_M, ALL).method == SINGLE_CHANNEL
    with pytest.raises(VaeAudioError, match="2 talkers cannot be separated from 1 channel"):
        choose_auto(1, 2, ANY_M, ALL)


def test_fixed_m_choices_are_unchanged():
    assert choose_auto(4, None, (4, (2,)), ALL).reason == (
        "4 channels, 2 talkers: the Neural FCA model made for them"
    )
    assert choose_auto(6, None, (4, (2,)), ALL).reason == (
        "6 channels, 2 talkers: the Neural FCA model is made for 4 channels and 2 talkers; "
        f"{AUTO_FALLBACK[0]} takes any"
    )


@pytest.mark.parametrize("n_mics", [2, 4, 6])
def test_auto_plans_the_shipped_any_m_model_for_every_m(any_m_model_file, n_mics, monkeypatch):
    """As the shipped model (no --model), the any-M model is auto's choice on every M >= 2
    (with its blend); for 3 talkers auto falls back, saying why."""
    monkeypatch.setattr(methods, "shipped_model_path", lambda: any_m_model_file)
    resolver = MethodResolver("auto")
    plan = resolver.plan(_item(n_mics))
    assert (plan.method, plan.n_src, plan.blend) == ("neural-fastfca", 2, methods.AUTO_NEURAL_BLEND)
    assert plan.label.startswith("neural-fastfca (shipped model)")
    assert (
        f"auto: {n_mics} channels, 2 talkers: the Neural FCA model takes any M >= 2 and 2 "
        "talkers" in resolver.notes
    )
    resolver = MethodResolver("auto", n_src=3)
    plan = resolver.plan(_item(n_mics))
    assert (plan.method, plan.n_src) == (AUTO_FALLBACK[0], 3)
    assert any("takes any M >= 2 but is made for 2 talkers" in n for n in resolver.notes)


def test_auto_with_a_named_any_m_model_says_it_takes_any_m(any_m_model_file):
    resolver = MethodResolver("auto", model=str(any_m_model_file))
    for M in (2, 6):
        assert resolver.plan(_item(M)).method == "neural-fastfca"
    assert resolver.notes[:2] == [
        "auto: 2 channels, 2 talkers: the Neural FCA model takes any M >= 2 and 2 talkers",
        "auto: the model's separation is averaged with fastmnmf2 (4 starts; 4 starts after WPE; "
        "2 starts on 2x longer frames; 2 starts after WPE on 2x longer frames; 2 starts on 4x "
        "longer frames)",
    ]
    assert "auto: 6 channels, 2 talkers: the Neural FCA model takes any M >= 2 and 2 talkers" in (
        resolver.notes
    )


@pytest.mark.parametrize("n_mics", [2, 6])
def test_separate_cli_runs_an_any_m_model_on_2_and_6_channels(
    any_m_model_file, n_mics, tmp_path, capsys
):
    """`vae-audio separate --method neural-fastfca --model ANY_M` writes M-channel images
    that are the library's separation of the input and sum back to it."""
    from vae_audio.neural_fca import load_neural_fca
    from vae_audio.separation import separate

    wav_in = _write_input(tmp_path / "in" / f"mix{n_mics}.wav", n_mics)
    out = tmp_path / "out"
    args = ["separate", str(wav_in), "-o", str(out), "--method", "neural-fastfca"]
    code = cli.main([*args, "--model", str(any_m_model_file), "--iters", "2", "-q"])
    assert code == 0, capsys.readouterr().err
    folder = out / wav_in.stem
    mix, sr = read(wav_in)
    images = {n: read(folder / f"{n}.wav")[0] for n in ("src1", "src2", "noise")}
    assert all(w.shape == mix.shape == (8000, n_mics) for w in images.values())
    record = json.loads((folder / "separation.json").read_text())
    assert record["method"] == "neural-fastfca" and record["label"] == "neural-fastfca (model.pt)"
    net = load_neural_fca(any_m_model_file)
    ref = separate(
        torch.from_numpy(mix.T.copy()), method="neural-fastfca", model=str(any_m_model_file),
        n_src=2, sr=sr, stft=net.stft_config, n_iter=2,
    )  # fmt: skip
    for k in (1, 2):
        got = torch.from_numpy(images[f"src{k}"].T)
        torch.testing.assert_close(got, ref.sources[k - 1], rtol=0, atol=1e-6)
    total = sum(images.values())
    assert np.abs(total - mix).max() < 1e-3 * np.abs(mix).max()


def test_pretrained_wrapper_takes_any_m_for_an_any_m_model(any_m_model_file):
    """The shipped-model wrapper checks M with the model's own rule: an any-M model separates
    6 channels and refuses one, saying it takes M >= 2."""
    from vae_audio._pretrained.cards import CARDS
    from vae_audio._pretrained.separator import PretrainedNeuralFCA

    model = PretrainedNeuralFCA.from_file(any_m_model_file, CARDS["neural-fca"])
    wav = torch.from_numpy(sf.read(MIXTURE, dtype="float32")[0][:4000].T.copy())  # [4, S]
    wav6 = torch.cat([wav, wav[:2].roll(3, -1)])  # [6, S]
    res = model.separate(wav6, 16000, n_iter=0)
    assert res.sources.shape == (2, 6, 4000)
    with pytest.raises(VaeAudioError, match=r"multichannel recordings \(\[M, S\] with M >= 2\)"):
        model.separate(wav[:1], 16000, n_iter=0)
