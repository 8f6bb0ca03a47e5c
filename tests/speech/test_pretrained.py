"""The shipped speech priors load without code execution, model held-out speech, and enhance
noisy held-out speech in single-channel VAE-NMF; each VAE method runs its own default."""

from pathlib import Path

import numpy as np
import pytest
import torch

import vae_audio
from vae_audio.audio.stft import StftConfig
from vae_audio.data.noise import pink_noise
from vae_audio.errors import VaeAudioError
from vae_audio.eval.metrics import bss_eval
from vae_audio.separation import separate
from vae_audio.speech.recipe import load_utterances
from vae_audio.speech.report import mean_psd, score_prior

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


@pytest.mark.parametrize("name", ["speech-vae", "speech-vae-conv", "speech-vae-conv16"])
def test_shipped_prior_beats_the_mean_psd_on_unseen_utterances(name):
    prior = vae_audio.pretrained(name)
    assert prior.card.name == name and prior.card.talkers is None
    assert prior.stft_config == StftConfig()  # 16 kHz, n_fft 512, hop 128
    train = load_utterances(FIXTURES / "train.jsonl", 16000, -25.0)
    valid = load_utterances(FIXTURES / "valid.jsonl", 16000, -25.0)
    scores = score_prior(prior, valid, mean_psd(prior, train))
    assert scores.is_div_vae < scores.is_div_fixed_gain < scores.is_div_fixed


def test_unknown_shipped_name_is_a_clear_error():
    with pytest.raises(VaeAudioError, match="speech-vae"):
        vae_audio.pretrained("no-such-model")


def _noisy_fixture(snr_db: float = 0.0):
    """The fixture corpus's validation utterances, concatenated (about 4 s of TTS speech; the
    many-voice prior may have heard these voices), in pink noise at ``snr_db``:
    ``(clean [S], noisy [1, S])``."""
    clean = torch.cat(load_utterances(FIXTURES / "valid.jsonl", 16000, -25.0)).double().numpy()
    noise = pink_noise(1, len(clean), np.random.default_rng(3))[0]
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return clean, (clean + noise)[None].astype(np.float32)


def _sdr(ref: np.ndarray, est) -> float:
    return float(bss_eval(ref[None], np.asarray(est, dtype=np.float64)[None]).sdr[0])


@pytest.mark.parametrize("name", ["speech-vae", "speech-vae-conv", "speech-vae-conv16"])
def test_each_shipped_prior_enhances_noisy_speech_in_vae_nmf(name):
    """mir_eval SDR of VAE-NMF's speech estimate at 0 dB pink noise, over the noisy input."""
    clean, noisy = _noisy_fixture()
    res = separate(noisy, "vae-nmf", n_src=1, n_iter=30, prior=name)
    gain = _sdr(clean, res.sources[0, 0]) - _sdr(clean, noisy[0])
    assert gain > 5.0, gain  # 7.2, 7.5 and 7.3 dB measured; a random prior scores -1.8


@pytest.mark.parametrize(
    ("method", "default"),
    [("vae-nmf", "speech-vae-conv"), ("vae-fca", "speech-vae-conv16"),
     ("vae-fastfca", "speech-vae-conv16"), ("refit", "speech-vae-conv16")],
)  # fmt: skip
def test_each_vae_method_defaults_to_its_shipped_prior(method, default):
    """Without ``prior``, ``vae-nmf`` runs the 8-epoch temporal prior, the multichannel
    methods and ``separate(refit=...)`` (auto's re-fit) the 16-epoch one: each run equals the
    one with that prior named and differs from the frame MLP's."""
    _, noisy = _noisy_fixture()
    x = noisy[:, :16000]
    if method != "vae-nmf":  # two channels: the second a few samples late
        x = np.concatenate([x, np.roll(x, 3, axis=1)])

    def run(prior):
        extra = {} if prior is None else {"prior": prior}
        if method == "refit":
            return separate(x, "fastmnmf2", n_src=1, n_iter=2, refit={"n_iter": 2, **extra})
        return separate(x, method, n_src=1, n_iter=2, **extra)

    runs = {p: run(p).sources for p in (None, default, "speech-vae")}
    torch.testing.assert_close(runs[None], runs[default])
    assert not torch.allclose(runs[None], runs["speech-vae"], atol=1e-4)
