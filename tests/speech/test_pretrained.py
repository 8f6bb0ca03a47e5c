"""The shipped speech prior loads without code execution and models held-out speech."""

from pathlib import Path

import pytest

import vae_audio
from vae_audio.audio.stft import StftConfig
from vae_audio.errors import VaeAudioError
from vae_audio.speech.recipe import load_utterances
from vae_audio.speech.report import mean_psd, score_prior

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


def test_shipped_prior_beats_the_mean_psd_on_unseen_utterances():
    prior = vae_audio.pretrained("speech-vae")
    assert prior.stft_config == StftConfig()  # 16 kHz, n_fft 512, hop 128
    train = load_utterances(FIXTURES / "train.jsonl", 16000, -25.0)
    valid = load_utterances(FIXTURES / "valid.jsonl", 16000, -25.0)
    scores = score_prior(prior, valid, mean_psd(prior, train))
    assert scores.is_div_vae < scores.is_div_fixed_gain < scores.is_div_fixed


def test_unknown_shipped_name_is_a_clear_error():
    with pytest.raises(VaeAudioError, match="speech-vae"):
        vae_audio.pretrained("no-such-model")
