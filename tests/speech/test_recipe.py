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


def test_manifest_settings_accept_a_union_with_repeats():
    from vae_audio.speech.recipe import manifest_list

    assert manifest_list("a.jsonl") == [("a.jsonl", 1)]
    assert manifest_list(["a.jsonl", {"manifest": "b.jsonl", "repeat": 3}]) == [
        ("a.jsonl", 1),
        ("b.jsonl", 3),
    ]
    for bad in ([], [{"manifest": "b.jsonl", "repeat": 0}], [{"path": "b.jsonl"}], [3]):
        with pytest.raises(VaeAudioError, match="data.train_manifest"):
            manifest_list(bad)


def test_loaders_draw_from_every_manifest_of_a_union():
    from vae_audio.data.manifest import read_manifest
    from vae_audio.speech.recipe import build_loaders, load_utterances

    n_train = len(read_manifest(FIXTURES / "train.jsonl"))
    n_valid = len(read_manifest(FIXTURES / "valid.jsonl"))
    union = [
        str(FIXTURES / "train.jsonl"),
        {"manifest": str(FIXTURES / "valid.jsonl"), "repeat": 3},
    ]
    config = {
        "data": {
            "train_manifest": union,
            "valid_manifest": union,
            "batch_size": 2,
            "segment_seconds": 0.5,
        }
    }
    train, valid = build_loaders(config)
    assert len(train.dataset) == n_train + 3 * n_valid  # the repeat weights the training draw
    assert len(valid.dataset) == n_train + n_valid  # validation reads each utterance once
    assert next(iter(train)).shape == (2, 8000)
    # the repeats of a manifest crop different segments of the same utterance
    union_set = getattr(train.dataset, "dataset", train.dataset)  # under the loader's keying
    copies = union_set.datasets[1:]
    assert [c.entries for c in copies] == [copies[0].entries] * 3
    assert not torch.equal(copies[0][0], copies[1][0])
    # the report's utterances alternate between the manifests, so each corpus is represented
    waves = load_utterances(union, 16000, -25.0, limit=4)
    first_train = load_utterances(FIXTURES / "train.jsonl", 16000, -25.0, limit=2)
    first_valid = load_utterances(FIXTURES / "valid.jsonl", 16000, -25.0, limit=2)
    want = [first_train[0], first_valid[0], first_train[1], first_valid[1]]
    for got, expected in zip(waves, want, strict=True):
        torch.testing.assert_close(got, expected)
