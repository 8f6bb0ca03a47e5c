"""Training through `train(...)`: overfitting, exact resume, export and run-folder layout."""

import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vae_audio.core.checkpoint import load_model_file
from vae_audio.core.curves import read_metrics
from vae_audio.core.likelihoods import GaussianLikelihood
from vae_audio.core.training import LossOutput, VAETask, train
from vae_audio.core.vae import VAE
from vae_audio.errors import VaeAudioError

X_DIM, LATENT = 8, 2


# Tiny models on a loaded 2-core machine: one intra-op thread is ~100x faster per step.
pytestmark = pytest.mark.usefixtures("one_thread")


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(X_DIM, 32), nn.Tanh(), nn.Linear(32, 2 * LATENT))

    def forward(self, x):
        mean, logvar = self.net(x).chunk(2, dim=-1)  # [B, 2D] -> 2 x [B, D]
        return mean, logvar


class TinyVAETask(VAETask):
    kind = "tiny-vae"

    def __init__(self, config):
        super().__init__(config)
        decoder = nn.Sequential(nn.Linear(LATENT, 32), nn.Tanh(), nn.Linear(32, X_DIM))
        self.model = VAE(_Encoder(), decoder, GaussianLikelihood(logvar=-2.0))

    def compute_loss(self, batch, stage):
        (x,) = batch
        out = self.model(x)
        return LossOutput(out.loss(), {"recon": out.recon_nll.mean(), "kl": out.kl.mean()})


def _config(out_dir, **trainer):
    return {
        "model": {"latent_dim": LATENT},
        "optim": {"lr": 1e-2},
        "trainer": {
            "out_dir": str(out_dir),
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "log_every_n_steps": 1,
            "num_sanity_val_steps": 0,
            **trainer,
        },
    }


def _data(n, seed):
    return TensorDataset(torch.randn(n, X_DIM, generator=torch.Generator().manual_seed(seed)))


def test_tiny_vae_overfits_one_batch_and_exports(tmp_path):
    # one fixed batch of 16, presented 40 times per epoch (few epochs: few checkpoint writes)
    batch = _data(16, 0).tensors[0]
    loader = DataLoader(TensorDataset(batch.repeat(40, 1)), batch_size=16)
    config = _config(tmp_path / "run", max_epochs=3)
    result = train(TinyVAETask(config), loader, config)

    steps, losses = read_metrics(result.metrics_csv)["train/loss_step"]
    assert result.global_step == 120 and steps[-1] == 119
    assert losses[0] > 0 and losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])

    run = tmp_path / "run"
    assert result.model_path == run / "model.pt" and (run / "curves.png").stat().st_size > 1000
    assert (run / "checkpoints" / "last.ckpt").is_file()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["trainer"]["max_epochs"] == 3 and saved["optim"]["name"] == "adam"
    exported = load_model_file(result.model_path, kind="tiny-vae")
    assert exported["meta"]["monitor"] == "train/loss_epoch"
    fresh = TinyVAETask(config)
    fresh.model.load_state_dict(exported["state_dict"])
    for name, value in fresh.model.state_dict().items():
        torch.testing.assert_close(value, result_task_state(result, name))


def result_task_state(result, name):
    return load_model_file(result.model_path)["state_dict"][name]


def _next_loss(task, x):
    torch.manual_seed(123)
    with torch.no_grad():
        return task.compute_loss((x,), "val").loss


def test_resume_is_exact(tmp_path):
    # 32 examples, batch 8, shuffled: 4 steps per epoch, validation every epoch.
    def loaders():
        train_loader = DataLoader(_data(32, 1), batch_size=8, shuffle=True)
        return train_loader, DataLoader(_data(16, 2), batch_size=8)

    full_cfg = _config(tmp_path / "full", max_epochs=4, export="last")
    full_task = TinyVAETask(full_cfg)
    full = train(full_task, loaders(), full_cfg)

    half_cfg = _config(tmp_path / "split", max_epochs=2, export="last")
    half = train(TinyVAETask(half_cfg), loaders(), half_cfg)
    assert half.global_step == 8
    resumed_cfg = _config(tmp_path / "split", max_epochs=4, export="last")
    resumed_task = TinyVAETask(resumed_cfg)
    resumed = train(resumed_task, loaders(), resumed_cfg, resume=True)

    assert resumed.global_step == full.global_step == 16
    for (name, a), (_, b) in zip(
        full_task.state_dict().items(), resumed_task.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    assert resumed.metrics["val/loss"] == pytest.approx(full.metrics["val/loss"], abs=1e-6)
    x = _data(8, 3).tensors[0]
    assert _next_loss(resumed_task, x).item() == pytest.approx(
        _next_loss(full_task, x).item(), abs=1e-6
    )
    # the split run's logs cover all 16 steps across its two CSV versions
    steps, _ = read_metrics(resumed.metrics_csv)["train/loss_step"]
    assert steps == list(range(16))


def test_resume_and_overwrite_errors(tmp_path):
    loader = DataLoader(_data(8, 0), batch_size=8)
    config = _config(tmp_path / "run", max_epochs=1)
    with pytest.raises(VaeAudioError, match="cannot resume: .*last.ckpt does not exist"):
        train(TinyVAETask(config), loader, config, resume=True)
    train(TinyVAETask(config), loader, config)
    with pytest.raises(VaeAudioError, match="already holds a run"):
        train(TinyVAETask(config), loader, config)


def test_unknown_trainer_key_is_rejected(tmp_path):
    config = _config(tmp_path, max_epoch=3)
    with pytest.raises(VaeAudioError, match=r"unknown trainer key\(s\) \['max_epoch'\]"):
        TinyVAETask(config)


def test_precision_is_validated_and_normalised():
    from vae_audio.core.training import with_training_defaults

    assert with_training_defaults({"trainer": {"precision": 32}})["trainer"]["precision"] == "32"
    resolved = with_training_defaults({"trainer": {"precision": "bf16-mixed"}, "optim": None})
    assert resolved["optim"]["name"] == "adam"
    with pytest.raises(VaeAudioError, match="trainer.precision='16'"):
        with_training_defaults({"trainer": {"precision": 16}})
