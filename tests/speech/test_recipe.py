"""`vae-audio train speech-vae` end to end on the fixture corpus, and the prior's file format."""

from pathlib import Path

import pytest
import torch

from vae_audio import cli
from vae_audio.audio.stft import StftConfig
from vae_audio.core.checkpoint import load_model_file, save_model
from vae_audio.errors import VaeAudioError
from vae_audio.speech.model import SpeechVAE, SpeechVAEConfig
from vae_audio.speech.prior import load_speech_prior, save_speech_prior

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "speech_vae" / "mlp.yaml"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("speech_vae")
    code = cli.main(
        [
            "train",
            "speech-vae",
            "--config",
            str(RECIPE),
            f"data.train_manifest={FIXTURES / 'train.jsonl'}",
            f"data.valid_manifest={FIXTURES / 'valid.jsonl'}",
            "data.batch_size=4",
            "data.segment_seconds=0.8",
            f"trainer.out_dir={out}",
            "trainer.max_epochs=3",
            "trainer.enable_progress_bar=false",
            "trainer.num_sanity_val_steps=0",
            "trainer.log_every_n_steps=1",
            "trainer.tensorboard=false",
        ]
    )
    assert code == 0
    return out


def test_recipe_writes_prior_config_curves_and_report(trained_run):
    for name in (
        "model.pt",
        "config.yaml",
        "curves.png",
        "report.md",
        "report.json",
        "reconstructions.png",
        "prior_samples.png",
        "checkpoints/last.ckpt",
    ):
        assert (trained_run / name).is_file(), name
    import json

    scores = json.loads((trained_run / "report.json").read_text())
    for key in ("is_div_vae", "elbo", "is_div_fixed", "is_div_fixed_gain"):
        assert torch.isfinite(torch.tensor(scores[key])), key
    # The gain-adapted baseline can only improve on the fixed PSD (a_t = 1 is a candidate).
    assert scores["is_div_fixed_gain"] <= scores["is_div_fixed"] + 1e-6


def test_exported_prior_round_trips_exactly(trained_run, tmp_path):
    model = load_speech_prior(trained_run / "model.pt", stft=StftConfig())
    power = torch.rand(2, 257, 11)
    again = load_speech_prior(save_speech_prior(tmp_path / "p.pt", model))
    torch.testing.assert_close(
        model.decode(model.encode(power).mean),
        again.decode(again.encode(power).mean),
        rtol=0,
        atol=0,
    )


def test_prior_with_other_stft_is_refused(trained_run):
    with pytest.raises(VaeAudioError, match="n_fft=512.*n_fft=1024"):
        load_speech_prior(trained_run / "model.pt", stft=StftConfig(n_fft=1024, hop_length=256))


def test_foreign_or_mismatched_files_are_refused(tmp_path):
    save_model(tmp_path / "img.pt", {"w": torch.zeros(1)}, {}, kind="image-vae")
    with pytest.raises(VaeAudioError, match="image-vae"):
        load_speech_prior(tmp_path / "img.pt")
    model = SpeechVAE(SpeechVAEConfig(), StftConfig())
    state = model.state_dict()
    state["decoder.net.0.weight"] = torch.zeros(3, 3)
    save_model(
        tmp_path / "bad.pt",
        state,
        {"model": model.config.to_dict(), "stft": model.stft_config.to_dict()},
        kind="speech-vae",
    )
    with pytest.raises(VaeAudioError, match="bad.pt"):
        load_speech_prior(tmp_path / "bad.pt")
    assert load_model_file(tmp_path / "img.pt")["kind"] == "image-vae"
