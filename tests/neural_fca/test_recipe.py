"""`vae-audio train neural-fca` end to end on the fixture mixture, and dynamic-mixing wiring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mir_eval.separation import bss_eval_sources

from vae_audio import cli
from vae_audio.core.config import load_config
from vae_audio.data.datasets import MixtureDataset
from vae_audio.data.dynamic import DynamicMixer
from vae_audio.data.presets import load_preset
from vae_audio.data.rir_bank import RirBank
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca import load_neural_fca
from vae_audio.neural_fca.examples import separate_item
from vae_audio.neural_fca.recipe import build_datasets, data_config
from vae_audio.neural_fca.task import NeuralFCATask

from .conftest import FIXTURES, MIXTURE_MANIFEST

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "neural_fca" / "cpu.yaml"
TINY_ENCODER = "model.encoder={io_channels: 8, mid_channels: 8, n_blocks: 1, n_layers: 2}"


@pytest.mark.filterwarnings("ignore::FutureWarning")  # mir_eval 0.8 deprecates bss_eval_sources
def test_recipe_trains_exports_and_writes_examples(tmp_path):
    code = cli.main(
        [
            "train",
            "neural-fca",
            "--config",
            str(RECIPE),
            f"data.train_manifest={MIXTURE_MANIFEST}",
            f"data.valid_manifest={MIXTURE_MANIFEST}",
            "data.batch_size=1",
            "data.segment_seconds=0.5",
            TINY_ENCODER,
            "model.em_iterations=1",
            "model.decoder={latent_dim: 4, hidden: 16}",
            "model.noise_latent_dim=2",
            "validation.examples_every_n_epochs=1",
            f"trainer.out_dir={tmp_path}",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "trainer.num_sanity_val_steps=0",
            "trainer.log_every_n_steps=1",
            "trainer.tensorboard=false",
        ]
    )
    assert code == 0
    for name in ("model.pt", "config.yaml", "curves.png", "checkpoints/last.ckpt"):
        assert (tmp_path / name).is_file(), name
    model = load_neural_fca(tmp_path / "model.pt", n_mics=4)  # M was taken from the data
    assert (
        model.config.n_mics == 4 and load_config(tmp_path / "config.yaml")["model"]["n_mics"] == 4
    )
    examples = tmp_path / "examples" / "epoch_0000"
    assert (examples / "000000.png").is_file()
    scores = json.loads((examples / "scores.json").read_text())
    assert len(scores["rows"]) == 2  # one row per reference speaker of the fixture mixture
    assert (examples / "scores.md").read_text().count("| 000000 |") == 2
    # The table's SDRs are mir_eval's for the exported weights and the matched slots.
    item = MixtureDataset(MIXTURE_MANIFEST, 0.5, with_sources=True, random_crop=False)[0]
    with torch.no_grad():
        images = separate_item(model, item["mix"])  # [N, M, S]
    slots = [row["slot"] for row in scores["rows"]]
    sdr = bss_eval_sources(
        item["sources"][:, 0].numpy(), images[slots, 0].numpy(), compute_permutation=False
    )[0]
    assert sdr == pytest.approx([row["sdr"] for row in scores["rows"]], abs=1e-3)


def test_data_config_errors_name_the_fix():
    with pytest.raises(VaeAudioError, match="data.train_manifest"):
        data_config({"data": {}})
    with pytest.raises(VaeAudioError, match="data.dynamic.rir_bank"):
        data_config({"data": {"dynamic": {"corpus": "c.jsonl"}}})
    with pytest.raises(VaeAudioError, match="unknown data key"):
        data_config({"data": {"train_manifest": "m.jsonl", "batchsize": 3}})


def _tiny_bank(path: Path) -> Path:
    """A hand-made 2-room bank: decaying random RIRs (64 taps), 2 talkers, 1 noise source."""
    g = torch.Generator().manual_seed(0)
    decay = torch.exp(-torch.arange(64) / 8.0)
    rirs = (torch.randn(2, 2, 3, 64, generator=g) * decay).half()
    noise = (torch.randn(2, 1, 3, 64, generator=g) * decay).half()
    bank = RirBank(
        rirs,
        noise,
        torch.tensor([1, 1]),
        torch.tensor([0.2, 0.2]),
        16000,
        load_preset("default").to_dict(),
        0,
    )
    return bank.save(path)


def test_dynamic_mixing_batches_are_rendered_by_the_task_mixer(tmp_path):
    config = {
        "data": {
            "dynamic": {
                "corpus": str(FIXTURES / "corpus" / "train.jsonl"),
                "rir_bank": str(_tiny_bank(tmp_path / "bank.pt")),
                "epoch_size": 2,
            },
            "segment_seconds": 0.25,
        },
        "stft": {"n_fft": 512, "hop_length": 128},
        "model": {
            "n_mics": 3,
            "decoder": {"latent_dim": 4, "hidden": 8},
            "noise_latent_dim": 2,
            "encoder": {"io_channels": 8, "mid_channels": 8, "n_blocks": 1, "n_layers": 1},
        },
    }
    train_set, valid, examples, bank, n_mics = build_datasets(config)
    assert n_mics == 3 and valid is None and examples is None
    batch = torch.utils.data.default_collate([train_set[0], train_set[1]])
    task = NeuralFCATask(config)
    task.mixer = DynamicMixer(bank)
    torch.testing.assert_close(task.mixture(batch), DynamicMixer(bank)(batch).mix)
    assert torch.isfinite(task.compute_loss(batch, "train").loss)


@pytest.mark.parametrize(
    "name", ["cpu", "paper", "fastfca_paper", "shipped", "any_mics", "round1", "talkers3"]
)
def test_every_recipe_builds_its_model_config_and_takes_the_wpe_front_end(name):
    """Each Neural FCA recipe's model section is a valid config; ``model.wpe=true`` (the WPE
    front end in training and separation) is taken by all of them (``n_mics: null`` of the
    CPU recipe comes from the data: 4 here; that of the any-M recipe stays null)."""
    from vae_audio.neural_fca.modelfile import model_config
    from vae_audio.separation.frontend import WpeConfig, wpe_config

    path = RECIPE.with_name(f"{name}.yaml")
    mics = ["model.n_mics=4"] if name == "cpu" else []
    cfg, stft = model_config(load_config(path, mics))
    assert cfg.wpe is None and stft.sample_rate == 16000
    if name == "any_mics":
        assert cfg.n_mics is None and cfg.encoder.kind == "tac" and cfg.spatial == "jd"
    if name == "talkers3":  # 3 speaker slots, trained on 2-, 3- and 1-talker sets
        assert cfg.n_speakers == 3 and len(load_config(path)["data"]["teacher_set"]) == 3
    cfg, _ = model_config(load_config(path, [*mics, "model.wpe=true"]))
    assert wpe_config(cfg.wpe) == WpeConfig()
