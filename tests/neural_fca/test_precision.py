"""Mixed precision: under bfloat16 autocast only the networks run in bfloat16; the PSDs, the
spatial statistics (ISS, EM), the KL and the loss stay float32 (vae_audio.core.precision)."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from vae_audio import cli
from vae_audio.core.config import load_config
from vae_audio.core.precision import as_float32, full_precision
from vae_audio.neural_fca import load_neural_fca
from vae_audio.neural_fca.objective import neural_fca_loss
from vae_audio.neural_fca.task import NeuralFCATask

from .conftest import MIXTURE_MANIFEST, random_stft, tiny_config, tiny_model
from .test_recipe import RECIPE, TINY_ENCODER

ENCODERS = [
    ("full", {}),
    ("jd", {}),
    ("jd", {"n_mics": None, "encoder": {"kind": "tac", "io_channels": 8, "mid_channels": 8,
                                        "n_blocks": 2, "n_layers": 2}}),
]  # fmt: skip


def _run(model, x, autocast: bool):
    """Forward (posterior mean) and loss, under CPU bfloat16 autocast or not."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(x, sample=False)
        with full_precision(x.device):
            loss = neural_fca_loss(x, out, beta=1.0, eps=model.config.eps)
    return out, loss


def _model_args(spatial: str, extra: dict) -> dict:
    extra = dict(extra)
    n_mics = extra.pop("n_mics", 4)
    return dict(n_mics=n_mics, spatial=spatial, jd_iterations=2, freq_gain=True, **extra)


def _model(spatial: str, extra: dict):
    return tiny_model(**_model_args(spatial, extra))


def _constant_encoder(model) -> None:
    """Zero weights, biases 0.5: every layer outputs sums of 0.5, exact in bfloat16."""
    with torch.no_grad():
        for name, p in model.encoder.named_parameters():
            p.fill_(0.5 if name.endswith("bias") else 0.0)


def test_helpers_cast_low_precision_only_and_switch_autocast_off():
    assert as_float32(torch.ones(2, dtype=torch.bfloat16)).dtype == torch.float32
    assert as_float32(torch.ones(2, dtype=torch.float16)).dtype == torch.float32
    assert as_float32(torch.ones(2, dtype=torch.float64)).dtype == torch.float64
    assert as_float32(None) is None
    a = torch.randn(8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16
        with full_precision("cpu"):
            assert (a @ a).dtype == torch.float32
            torch.testing.assert_close(a @ a, a.double().matmul(a.double()).float())


@pytest.mark.parametrize(("spatial", "extra"), ENCODERS)
def test_statistics_stay_float32_under_autocast(spatial, extra):
    """With zero weights and biases of 0.5 every layer of the encoder outputs sums of 0.5,
    exact in bfloat16 too, while their sigmoid, softplus and everything downstream are not:
    every difference from the float32 pass would come from something computed in bfloat16
    after the networks. There must be none."""
    model = _model(spatial, extra)
    _constant_encoder(model)
    x = random_stft(2, 4)
    ref, ref_loss = _run(model, x, autocast=False)
    out, loss = _run(model, x, autocast=True)
    for name in ("lam", "kl", "H", "Q", "g", "xt", "log_gain", "log_freq_gain"):
        a, b = getattr(out, name), getattr(ref, name)
        if b is None:
            continue
        assert a.dtype == b.dtype, name
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=name)
    torch.testing.assert_close(loss.loss, ref_loss.loss, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("spatial", "extra"), ENCODERS)
def test_training_loss_is_computed_in_float32_under_autocast(spatial, extra):
    """The task's STFT, normalisation and loss (NLL, KL, distillation) run outside autocast."""
    args = _model_args(spatial, extra)
    task = NeuralFCATask(tiny_config(args.pop("n_mics"), args.pop("spatial"), **args))
    _constant_encoder(task.model)
    wav = torch.randn(2, 4, 400, generator=torch.Generator().manual_seed(3))
    target = torch.randn(2, 3, 9, 101, generator=torch.Generator().manual_seed(4))
    batch = {"mix": wav, "teacher_log_psd": target}
    torch.manual_seed(0)
    ref = task.compute_loss(batch, "valid")
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = task.compute_loss(batch, "valid")
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.loss, ref.loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out.logs["distil"], ref.logs["distil"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("spatial", "extra"), ENCODERS)
def test_trained_weights_under_autocast_give_float32_outputs_near_the_float32_loss(spatial, extra):
    model = _model(spatial, extra)
    x = random_stft(2, 4, seed=1)
    ref, ref_loss = _run(model, x, autocast=False)
    out, loss = _run(model, x, autocast=True)
    assert out.lam.dtype == out.kl.dtype == out.z.dtype == torch.float32
    assert loss.loss.dtype == torch.float32 and torch.isfinite(loss.loss)
    # bfloat16 networks: the loss moves, by far less than its size
    assert abs(loss.nll - ref_loss.nll) < 0.05 * abs(ref_loss.nll) + 0.05
    loss.loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_recipe_trains_with_bf16_mixed_precision(tmp_path):
    code = cli.main(
        [
            "train", "neural-fca", "--config", str(RECIPE),
            f"data.train_manifest={MIXTURE_MANIFEST}", f"data.valid_manifest={MIXTURE_MANIFEST}",
            "trainer.num_sanity_val_steps=0", "validation.examples=0",
            "data.batch_size=1", "data.segment_seconds=0.5", TINY_ENCODER,
            "model.em_iterations=1", "model.decoder={latent_dim: 4, hidden: 16}",
            "model.noise_latent_dim=2", f"trainer.out_dir={tmp_path}",
            "trainer.max_epochs=2", "trainer.precision=bf16-mixed",
            "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1",
            "trainer.tensorboard=false",
        ]
    )  # fmt: skip
    assert code == 0
    assert load_config(tmp_path / "config.yaml")["trainer"]["precision"] == "bf16-mixed"
    model = load_neural_fca(tmp_path / "model.pt", n_mics=4)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights
    with (tmp_path / "logs" / "version_0" / "metrics.csv").open() as f:
        losses = [float(r["train/loss_step"]) for r in csv.DictReader(f) if r["train/loss_step"]]
    assert len(losses) >= 2 and all(math.isfinite(v) for v in losses)
