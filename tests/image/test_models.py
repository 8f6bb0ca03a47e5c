"""Every image model: forward, loss and backward work, and it overfits a tiny batch."""

import math

import numpy as np
import pytest
import torch

from vae_audio.core.distributions import DiagonalGaussian
from vae_audio.image.build import build_model
from vae_audio.image.datasets import AffineDigits, DSprites
from vae_audio.image.models import kl_diagonal
from vae_audio.image.objectives import Objective, ObjectiveConfig


@pytest.fixture(scope="module")
def sprites():
    data = DSprites()
    factors = data.sample_factors(8, np.random.RandomState(0))
    return {"x": torch.from_numpy(data.sample_observations_from_factors(factors, None))}


@pytest.fixture(scope="module")
def digits():
    # Binarised so that the Bernoulli NLL can approach 0 when the batch is memorised.
    d = AffineDigits(8, seed=0)
    return {"x": (d.images > 0.5).float(), "label": d.labels}


CASES = {
    "vae": ("sprites", {}),
    "beta_h": ("sprites", {"beta": 4.0}),
    "beta_b": (
        "sprites",
        {
            "gamma": 20.0,
            "capacity": {"kind": "linear_warmup", "start": 0, "end": 100, "value_to": 15.0},
        },
    ),
    "tcvae_mss": ("sprites", {"kind": "tcvae", "beta": 6.0, "estimator": "mss"}),
    "tcvae_mws": ("sprites", {"kind": "tcvae", "beta": 6.0, "estimator": "mws"}),
    "infovae": ("sprites", {"alpha": 0.0, "lam": 100.0}),
    "cvae": ("digits", {}),
    "jmvae": ("digits", {"alpha": 1.0}),
    "affine": ("digits", {}),
}
MODEL_CFG = {"network": "mlp", "latent_dim": 4, "hidden": [128], "coord_hidden": [64, 64]}
# (optimiser steps, learning rate); the coordinate-MLP decoder needs a few more.
BUDGET = {"affine": (150, 1e-2)}


def _setup(name, request):
    data_name, extra = CASES[name]
    batch = request.getfixturevalue(data_name)
    cfg = ObjectiveConfig(**{"kind": name, **extra})
    torch.manual_seed(0)
    model = build_model(MODEL_CFG, cfg.kind, tuple(batch["x"].shape[1:]), 10)
    return model, Objective(cfg, dataset_size=1000), batch


@pytest.mark.parametrize("name", list(CASES))
def test_loss_backward_and_overfit(name, request):
    model, objective, batch = _setup(name, request)
    out = objective(model, batch, step=0)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    no_grad = [
        n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert not no_grad, f"parameters without gradient: {no_grad}"

    steps, lr = BUDGET.get(name, (100, 3e-3))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    first = None
    for step in range(steps):
        loss = objective(model, batch, step).loss
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = np.mean([objective(model, batch, steps).loss.item() for _ in range(4)])
    assert last < 0.5 * first, (first, last)


def test_vae_loss_is_negative_elbo_of_bernoulli_model(sprites):
    # The "vae" objective must equal mean_B [−log p(x|z) + KL] computed by hand.
    torch.manual_seed(0)
    model = build_model(MODEL_CFG, "vae", (1, 64, 64))
    torch.manual_seed(1)
    loss = Objective(ObjectiveConfig("vae"))(model, sprites, 0).loss
    torch.manual_seed(1)
    q = model.encode(sprites["x"])
    z = q.rsample()
    logits = model.vae.decoder(z)
    nll = torch.distributions.Bernoulli(logits=logits).log_prob(sprites["x"]).sum((1, 2, 3))
    kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(q.mean, q.std), torch.distributions.Normal(0.0, 1.0)
    ).sum(1)
    torch.testing.assert_close(loss, (-nll + kl).mean())


def test_capacity_objective_follows_schedule(sprites):
    cfg = ObjectiveConfig(
        "beta_b",
        gamma=10.0,
        capacity={"kind": "linear_warmup", "start": 0, "end": 100, "value_to": 20.0},
    )
    torch.manual_seed(0)
    model = build_model(MODEL_CFG, "beta_b", (1, 64, 64))
    objective = Objective(cfg)
    for step, cap in [(0, 0.0), (50, 10.0), (200, 20.0)]:
        torch.manual_seed(2)
        out = objective(model, sprites, step)
        assert out.logs["capacity"] == pytest.approx(cap)
        expected = out.logs["nll"] + 10.0 * (out.logs["kl"] - cap).abs()
        torch.testing.assert_close(out.loss.detach(), expected)


def test_kl_diagonal_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    q = DiagonalGaussian(torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g))
    p = DiagonalGaussian(torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g))
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(q.mean, q.std), torch.distributions.Normal(p.mean, p.std)
    ).sum(-1)
    torch.testing.assert_close(kl_diagonal(q, p), ref)


def test_jmvae_loss_adds_unimodal_kls(digits):
    torch.manual_seed(0)
    model = build_model(MODEL_CFG, "jmvae", (1, 28, 28), 10)
    torch.manual_seed(3)
    out = model(digits["x"], digits["label"])
    q_x, q_y = model.encode(digits["x"]), model.encode_label(digits["label"])
    torch.testing.assert_close(out.kl_x, kl_diagonal(out.posterior, q_x))
    torch.testing.assert_close(out.kl_y, kl_diagonal(out.posterior, q_y))
    base = (out.recon_nll_x + out.recon_nll_y + out.kl).mean()
    torch.testing.assert_close(out.loss(0.0), base)
    torch.testing.assert_close(out.loss(2.0), base + 2.0 * (out.kl_x + out.kl_y).mean())


@pytest.mark.parametrize("size", [28, 64])
def test_conv_networks_round_trip_shapes_and_condition(size):
    torch.manual_seed(0)
    model = build_model({"network": "conv", "latent_dim": 5}, "cvae", (1, size, size), 3)
    x = torch.rand(4, 1, size, size)
    label = torch.tensor([0, 1, 2, 0])
    q = model.encode(x, label)
    assert q.mean.shape == (4, 5)
    y = model.generate(q.mean, label)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    # The label changes the decoder output: the condition is wired in.
    assert not torch.allclose(y, model.generate(q.mean, (label + 1) % 3))


def test_affine_decoder_identity_and_transform_switch(digits):
    torch.manual_seed(0)
    model = build_model(MODEL_CFG, "affine", (1, 28, 28))
    z = torch.randn(3, model.latent_dim)
    off = model.generate(z, transform=False)
    z0 = z.clone()
    z0[:, :6] = 0.0
    torch.testing.assert_close(off, model.generate(z0))  # transform off == A = 0
    assert not torch.allclose(off, model.generate(z))
    assert math.isclose(model.latent_dim, 6 + MODEL_CFG["latent_dim"])


@pytest.mark.parametrize("std", [4.0, [1.0, 10.0, 1.0, 10.0, 1.0, 1.0]])
def test_affine_prior_std_changes_only_the_affine_kl(digits, std):
    torch.manual_seed(0)
    cfg = {**MODEL_CFG, "affine_prior_std": std}
    model = build_model(cfg, "affine", (1, 28, 28))
    torch.manual_seed(5)
    out = model(digits["x"])
    q = out.posterior
    normal = torch.distributions.Normal
    affine_std = [std] * 6 if isinstance(std, float) else std
    scale = torch.tensor(affine_std + [1.0] * MODEL_CFG["latent_dim"])
    ref = torch.distributions.kl_divergence(normal(q.mean, q.std), normal(0.0, scale))  # [B, D]
    torch.testing.assert_close(out.kl_per_dim, ref)
    torch.testing.assert_close(out.kl, ref.sum(-1))
