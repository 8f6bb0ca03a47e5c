"""The VQ-VAE, VAE-GAN and mixture-prior recipes end to end: run folder, figures, metrics,
and a reloaded model.pt that scores the validation set as the trained model did."""

import csv
import json

import pytest
import torch
import yaml

from vae_audio import cli
from vae_audio.core.config import load_config
from vae_audio.errors import VaeAudioError
from vae_audio.image.build import load_image_model
from vae_audio.image.data import build_data
from vae_audio.image.evaluate import elbo_on
from vae_audio.image.recipe import train_from_config

MODEL = {
    "vq_vae": {"codebook_size": 8, "code_dim": 4, "channels": 8, "prior_width": 16},
    "vae_gan": {"network": "mlp", "hidden": [32], "discriminator_hidden": [32], "latent_dim": 3},
    "gmm_vae": {"network": "mlp", "hidden": [32], "latent_dim": 3, "num_components": 3},
}
FIGURES = {
    "vq_vae": ["reconstructions.png", "samples.png"],
    "vae_gan": ["reconstructions.png", "samples.png", "traversals.png"],
    "gmm_vae": ["reconstructions.png", "samples.png", "traversals.png", "component_samples.png"],
}


def _config(tmp_path, kind, data_name, steps=6):
    return {
        "data": {"name": data_name, "num_train": 128, "num_val": 48, "batch_size": 16},
        "model": {**MODEL[kind], "likelihood": "bernoulli"},
        "objective": {"kind": kind},
        "eval": {"metrics": []},
        "plots": {"num_images": 8, "traversal_steps": 3},
        "optim": {"lr": 1e-3},
        "trainer": {
            "out_dir": str(tmp_path / kind),
            "max_steps": steps,
            "max_epochs": -1,
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
            "tensorboard": False,
            "export": "last",
        },
    }


@pytest.mark.parametrize(
    ("kind", "data_name"), [("vq_vae", "digits"), ("vae_gan", "digits"), ("gmm_vae", "dsprites")]
)
def test_recipe_writes_run_and_reloads(tmp_path, kind, data_name):
    # The VAE-GAN steps three optimisers per batch, and Lightning counts each step.
    steps, batches = (9, 3) if kind == "vae_gan" else (6, 6)
    recipe = tmp_path / f"{kind}.yaml"
    recipe.write_text(yaml.safe_dump(_config(tmp_path, kind, data_name, steps)))
    assert cli.main(["train", "image-vae", "--config", str(recipe)]) == 0
    run = tmp_path / kind
    for name in ["model.pt", "config.yaml", "curves.png", "metrics.json", *FIGURES[kind]]:
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == steps
    if kind == "vq_vae":
        assert 1.0 <= metrics["codebook"]["perplexity"] <= 8.0
        assert 0.0 < metrics["codebook"]["usage"] <= 1.0
    if kind == "gmm_vae":
        assert metrics["clustering"]["target"] == "factor:0"  # dSprites shape
        assert 0.0 <= metrics["clustering"]["accuracy"] <= 1.0
    with open(run / "logs" / "version_0" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    logged = {"vq_vae": "perplexity", "vae_gan": "discriminator_loss", "gmm_vae": "kl"}[kind]
    assert len([r for r in rows if r.get(f"train/{logged}_step")]) == batches  # one per batch

    model, exported = load_image_model(run / "model.pt")
    assert exported["config"]["objective"]["kind"] == kind
    saved = yaml.safe_load((run / "config.yaml").read_text())
    _, val_loader = build_data(saved["data"]).loaders()
    again = elbo_on(model, val_loader, seed=saved["trainer"]["seed"])
    assert again["elbo"] == pytest.approx(metrics["val"]["elbo"], rel=1e-5)


def test_shipped_recipes_load_and_bad_settings_are_user_errors(tmp_path):
    for name in ("vq_vae", "vae_gan", "gmm_vae"):
        config = load_config(f"recipes/image_vae/{name}.yaml")
        assert config["objective"]["kind"] == name
    config = _config(tmp_path, "vae_gan", "digits")
    config["optim"]["scheduler"] = {"kind": "cosine"}
    with pytest.raises(VaeAudioError, match="scheduler"):
        train_from_config(config)
    config = _config(tmp_path, "vq_vae", "digits")
    config["model"]["downsample"] = 3  # 28 is not divisible by 8
    with pytest.raises(VaeAudioError, match="downsample"):
        train_from_config(config)
    config = _config(tmp_path, "vae_gan", "digits")
    config["objective"]["gan_form"] = "wasserstein"
    with pytest.raises(VaeAudioError, match="gan_form"):
        train_from_config(config)


def test_vae_gan_resumed_run_matches_uninterrupted(tmp_path):
    # Three optimisers under manual optimisation: their states and the step count survive a
    # stop at max_steps and a resume (4 batches per epoch, stop after one epoch = 12 steps).
    full = _config(tmp_path / "full", "vae_gan", "digits", steps=24)
    full["data"]["num_train"] = 64
    assert train_from_config(full).global_step == 24
    split = {**full, "trainer": {**full["trainer"], "out_dir": str(tmp_path / "split")}}
    split["trainer"]["max_steps"] = 12
    assert train_from_config(split).global_step == 12
    split["trainer"]["max_steps"] = 24
    assert train_from_config(split, resume=True).global_step == 24
    a = torch.load(tmp_path / "full" / "vae_gan" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "split" / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
