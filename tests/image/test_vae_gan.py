"""VAE-GAN: per-network objectives, gradient routing, and one step of each network lowering
its own loss on a fixture batch."""

import copy

import pytest
import torch
import torch.nn.functional as F

from vae_audio.image.build import build_model
from vae_audio.image.datasets import AffineDigits
from vae_audio.image.vae_gan_objective import VAEGANNoise, vae_gan_losses, vae_gan_step

CFG = {"network": "mlp", "hidden": [64], "discriminator_hidden": [64, 32], "latent_dim": 4}
NETWORKS = ("encoder", "decoder", "discriminator")


@pytest.fixture(scope="module")
def batch():
    return (AffineDigits(16, seed=0).images > 0.5).float()  # [16, 1, 28, 28]


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model(CFG, "vae_gan", (1, 28, 28))


def _noise(batch):
    g = torch.Generator().manual_seed(1)
    return VAEGANNoise(
        torch.randn(len(batch), 4, generator=g), torch.randn(len(batch), 4, generator=g)
    )


def _sgd(model, lrs):
    nets = model.networks()
    return {n: torch.optim.SGD(nets[n].parameters(), lr=lrs.get(n, 0.0)) for n in NETWORKS}


@pytest.mark.parametrize("gan_form", ["minimax", "non_saturating"])
def test_losses_follow_the_paper_weighting(batch, gan_form):
    model, noise = _model(), _noise(batch)
    gamma = 0.3
    out = vae_gan_losses(model, batch, gamma, noise, gan_form)
    # Recompute every term by hand from the same noise.
    q = model.encode(batch)
    z = q.mean + q.std * noise.eps
    x_rec, x_p = (
        torch.sigmoid(model.vae.decoder(z)),
        torch.sigmoid(model.vae.decoder(noise.z_prior)),
    )
    (l_real, f_real), (l_rec, f_rec), (l_p, _) = (
        model.discriminator(t) for t in (batch, x_rec, x_p)
    )
    kl = (
        torch.distributions.kl_divergence(
            torch.distributions.Normal(q.mean, q.std), torch.distributions.Normal(0.0, 1.0)
        )
        .sum(1)
        .mean()
    )
    feat = 0.5 * ((f_real - f_rec) ** 2).sum(1).mean()
    log_d, log_1md = F.logsigmoid, lambda t: F.logsigmoid(-t)
    gan = -(log_d(l_real).mean() + log_1md(l_rec).mean() + log_1md(l_p).mean())
    torch.testing.assert_close(out.encoder, kl + feat)
    torch.testing.assert_close(out.discriminator, gan)
    if gan_form == "minimax":
        torch.testing.assert_close(out.decoder, gamma * feat - gan)
    else:
        torch.testing.assert_close(
            out.decoder, gamma * feat - log_d(l_rec).mean() - log_d(l_p).mean()
        )


def test_each_network_receives_only_its_own_objectives_gradient(batch):
    model, noise = _model(), _noise(batch)
    reference = copy.deepcopy(model)
    vae_gan_step(model, batch, _sgd(model, {}), gamma=0.5, noise=noise)  # lr 0: gradients only
    losses = vae_gan_losses(reference, batch, 0.5, noise)
    nets, ref_nets = model.networks(), reference.networks()
    for name, loss in losses.per_network().items():
        expected = torch.autograd.grad(loss, list(ref_nets[name].parameters()), retain_graph=True)
        for p, g in zip(nets[name].parameters(), expected, strict=True):
            torch.testing.assert_close(p.grad, g)


@pytest.mark.parametrize("network", NETWORKS)
def test_one_step_of_a_network_lowers_its_own_loss(batch, network):
    model, noise = _model(), _noise(batch)
    before = copy.deepcopy(model)
    start = vae_gan_losses(model, batch, 1.0, noise).per_network()[network].item()
    vae_gan_step(model, batch, _sgd(model, {network: 1e-3}), gamma=1.0, noise=noise)
    end = vae_gan_losses(model, batch, 1.0, noise).per_network()[network].item()
    assert end < start, (network, start, end)
    for name in NETWORKS:  # the other networks did not move
        same = all(
            torch.equal(a, b)
            for a, b in zip(
                model.networks()[name].parameters(),
                before.networks()[name].parameters(),
                strict=True,
            )
        )
        assert same == (name != network), name
