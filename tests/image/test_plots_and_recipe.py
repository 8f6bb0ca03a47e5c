"""Figures, the `image-vae` trainer end to end, and reloading its exported model."""

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from vae_audio import cli
from vae_audio.core.distributions import DiagonalGaussian
from vae_audio.errors import VaeAudioError
from vae_audio.image import plots
from vae_audio.image.build import load_image_model
from vae_audio.image.data import build_data
from vae_audio.image.evaluate import elbo_on
from vae_audio.image.recipe import train_from_config


class _Echo(nn.Module):
    """Encoder mean = first D pixels; generate writes z into the first D pixels."""

    latent_dim = 3
    num_classes = 0

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def encode(self, x, label=None):
        mean = x.flatten(1)[:, : self.latent_dim]
        return DiagonalGaussian(mean, torch.zeros_like(mean))

    def generate(self, z, label=None):
        out = torch.zeros(z.shape[0], 1, 4, 4)
        out.view(z.shape[0], -1)[:, : self.latent_dim] = z
        return out


def test_traversal_rows_sweep_one_dimension_each(tmp_path):
    model = _Echo()
    x = torch.rand(1, 1, 4, 4)
    images = plots.traversal_images(model, x, limit=2.0, steps=5)  # [D * 5, 1, 4, 4]
    codes = images.flatten(1)[:, :3].reshape(3, 5, 3)  # [row d, step, dim]
    seed = x.flatten()[:3]
    for d in range(3):
        torch.testing.assert_close(codes[d, :, d], torch.linspace(-2, 2, 5))
        others = [k for k in range(3) if k != d]
        torch.testing.assert_close(codes[d][:, others], seed[others].expand(5, 2))
    plots.save_traversals(model, x, tmp_path / "t.png", steps=5)
    with Image.open(tmp_path / "t.png") as img:
        assert img.size[0] > 100 and img.size[1] > 100


def test_image_grid_layout():
    images = torch.stack([torch.full((1, 2, 2), i / 5) for i in range(6)])
    grid = plots.image_grid(images, ncol=4, pad=1)
    assert grid.shape == (2 * 3 + 1, 4 * 3 + 1, 1)
    assert grid[1, 1, 0] == 0.0 and grid[4, 4, 0] == pytest.approx(5 / 5)  # item 5: row 1, col 1


def _config(tmp_path, kind, data, **extra):
    return {
        "data": {"num_train": 256, "num_val": 64, "batch_size": 32, **data},
        "model": {"network": "mlp", "hidden": [64], "latent_dim": 3, "coord_hidden": [16, 16]},
        "objective": {"kind": kind, **extra},
        "eval": {"metrics": []},
        "plots": {"num_images": 8, "traversal_steps": 5},
        "optim": {"lr": 1e-3},
        "trainer": {
            "out_dir": str(tmp_path / kind),
            "max_steps": 12,
            "max_epochs": -1,
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
            "tensorboard": False,
        },
    }


def test_tcvae_recipe_on_dsprites_writes_run_and_reloads(tmp_path):
    config = _config(tmp_path, "tcvae", {"name": "dsprites"}, beta=6.0)
    config["eval"] = {
        "metrics": ["mig", "factor_vae", "beta_vae"],
        "params": {
            "mig": {"num_train": 200},
            "factor_vae": {"num_train": 20, "num_eval": 20, "num_variance_estimate": 200},
            "beta_vae": {"num_train": 20, "num_eval": 20},
        },
    }
    recipe = tmp_path / "tcvae.yaml"
    recipe.write_text(yaml.safe_dump(config))
    code = cli.main(["train", "image-vae", "--config", str(recipe)])
    assert code == 0
    run = tmp_path / "tcvae"
    for name in (
        "model.pt",
        "config.yaml",
        "curves.png",
        "reconstructions.png",
        "samples.png",
        "traversals.png",
        "metrics.json",
    ):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == 12
    assert metrics["val"]["elbo"] == pytest.approx(-(metrics["val"]["nll"] + metrics["val"]["kl"]))
    for name in ("mig", "factor_vae", "beta_vae"):
        assert name in metrics["disentanglement"]
    assert 0.0 <= metrics["disentanglement"]["mig"]["mig"] <= 1.0

    # The reloaded model scores the validation set exactly as the trained one did.
    model, exported = load_image_model(run / "model.pt")
    assert exported["config"]["objective"]["kind"] == "tcvae"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    _, val_loader = build_data(saved["data"]).loaders()
    again = elbo_on(model, val_loader, seed=saved["trainer"]["seed"])
    assert again["elbo"] == pytest.approx(metrics["val"]["elbo"], rel=1e-5)


def test_affine_recipe_on_digits_reports_angle_spread(tmp_path):
    config = _config(tmp_path, "affine", {"name": "digits", "num_val": 32})
    result = train_from_config(config)
    run = tmp_path / "affine"
    assert result.model_path == run / "model.pt" and result.model_path.is_file()
    assert str(run) in result.summary
    metrics = json.loads((run / "metrics.json").read_text())
    assert result.report == metrics
    spreads = metrics["affine"]
    assert set(spreads) == {"input_angle_std", "recon_angle_std", "normalised_angle_std"}
    assert all(np.isfinite(v) and v >= 0 for v in spreads.values())
    assert (run / "affine_normalisation.png").is_file()


def test_bad_recipe_sections_are_user_errors(tmp_path):
    config = _config(tmp_path, "vae", {"name": "dsprites"})
    config["modle"] = {}
    with pytest.raises(VaeAudioError, match="modle"):
        train_from_config(config)
    config = _config(tmp_path, "cvae", {"name": "dsprites"})
    with pytest.raises(VaeAudioError, match="labelled"):
        train_from_config(config)
    config = _config(tmp_path, "vae", {"name": "mnist"})
    with pytest.raises(VaeAudioError, match="data.root"):
        train_from_config(config)
