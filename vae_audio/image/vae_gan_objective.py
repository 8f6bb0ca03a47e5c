"""VAE-GAN losses and one training step (Larsen et al. 2016, Sec. 2 and Algorithm 1).

With ``z = μ(x) + σ(x) ε`` (reparameterised), ``x̃ = Dec(z)``, ``x_p = Dec(z_p)``,
``z_p ~ N(0, I)`` and the discriminator's logit ``Dis(·)`` and features ``Dis_l(·)``:

- ``L_prior = KL(q(z | x) ‖ N(0, I))``, closed form, summed over D (Eq. (6));
- ``L_llike = ½ ‖Dis_l(x) − Dis_l(x̃)‖²``, summed over the features: the negative
  log-likelihood of a unit-variance Gaussian on ``Dis_l`` up to a constant (Eq. (8));
- ``L_GAN = BCE(Dis(x), 1) + BCE(Dis(x̃), 0) + BCE(Dis(x_p), 0)``: the discriminator's
  binary cross-entropy on real data, reconstructions and prior samples, i.e. minus the
  log-likelihood bracket of Eq. (9), so that every network *descends* its own loss.

Each term is averaged over the batch (nats per image). Per-network objectives
(Algorithm 1): encoder ``L_prior + L_llike``; decoder ``γ L_llike − L_GAN``; discriminator
``L_GAN``. ``L_llike`` does not train the discriminator. ``gan_form="non_saturating"`` swaps
the decoder's ``−L_GAN`` for ``BCE(Dis(x̃), 1) + BCE(Dis(x_p), 1)`` (Goodfellow et al. 2014,
Sec. 3), which keeps a gradient when the discriminator wins; the encoder and discriminator
objectives are unchanged.

:func:`vae_gan_step` computes the three gradients from one forward pass, each restricted to
its own network's parameters, then steps the three optimisers (simultaneous updates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vae_audio.errors import VaeAudioError

GAN_FORMS = ("minimax", "non_saturating")


@dataclass
class VAEGANNoise:
    """Fixed noise for one evaluation: ``eps [B, D]`` (reparameterisation), ``z_prior [B, D]``."""

    eps: Tensor
    z_prior: Tensor

    @classmethod
    def draw(cls, batch: int, latent_dim: int, like: Tensor) -> VAEGANNoise:
        shape = (batch, latent_dim)
        return cls(
            torch.randn(shape, dtype=like.dtype, device=like.device),
            torch.randn(shape, dtype=like.dtype, device=like.device),
        )


@dataclass
class VAEGANLosses:
    """The three terms and the three per-network objectives (scalars, nats per image)."""

    prior: Tensor
    feature_nll: Tensor
    gan: Tensor
    encoder: Tensor
    decoder: Tensor
    discriminator: Tensor
    real_score: Tensor  # mean Dis(x) as a probability, detached
    fake_score: Tensor  # mean Dis(x̃) as a probability, detached

    def per_network(self) -> dict[str, Tensor]:
        return {
            "encoder": self.encoder,
            "decoder": self.decoder,
            "discriminator": self.discriminator,
        }

    def logs(self) -> dict[str, Tensor]:
        """Detached scalars for the training curves."""
        out = {"kl": self.prior, "feature_nll": self.feature_nll, "gan": self.gan}
        out.update({f"{name}_loss": loss for name, loss in self.per_network().items()})
        out.update(real_score=self.real_score, fake_score=self.fake_score)
        return {k: v.detach() for k, v in out.items()}


def _bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def vae_gan_losses(
    model,
    x: Tensor,
    gamma: float = 1.0,
    noise: VAEGANNoise | None = None,
    gan_form: str = "minimax",
) -> VAEGANLosses:
    """The VAE-GAN terms of a batch ``x [B, C, H, W]`` for a :class:`VAEGAN`.

    Args:
        model: the :class:`~vae_audio.image.models.VAEGAN`.
        x: images in ``[0, 1]``.
        gamma: ``γ``, weight of ``L_llike`` against the GAN term in the decoder's objective.
        noise: fixed ``ε`` and ``z_p`` (default: fresh standard-normal draws).
        gan_form: ``minimax`` (Algorithm 1) or ``non_saturating`` (decoder term only).
    """
    if gan_form not in GAN_FORMS:
        raise VaeAudioError(f"objective.gan_form {gan_form!r} unknown; use one of {GAN_FORMS}")
    q = model.encode(x)  # [B, D]
    noise = noise or VAEGANNoise.draw(x.shape[0], q.mean.shape[1], q.mean)
    z = q.mean + q.std * noise.eps  # [B, D]
    x_rec = model.render(z)  # [B, C, H, W]
    x_prior = model.render(noise.z_prior)
    logit_real, feat_real = model.discriminator(x)  # [B], [B, F]
    logit_rec, feat_rec = model.discriminator(x_rec)
    logit_prior, _ = model.discriminator(x_prior)
    prior = q.kl().mean()
    feature_nll = 0.5 * (feat_real - feat_rec).pow(2).sum(1).mean()
    gan = _bce(logit_real, 1.0) + _bce(logit_rec, 0.0) + _bce(logit_prior, 0.0)
    if gan_form == "minimax":
        adversarial = -gan
    else:
        adversarial = _bce(logit_rec, 1.0) + _bce(logit_prior, 1.0)
    return VAEGANLosses(
        prior=prior,
        feature_nll=feature_nll,
        gan=gan,
        encoder=prior + feature_nll,
        decoder=gamma * feature_nll + adversarial,
        discriminator=gan,
        real_score=torch.sigmoid(logit_real).mean().detach(),
        fake_score=torch.sigmoid(logit_rec).mean().detach(),
    )


def vae_gan_step(
    model,
    x: Tensor,
    optimizers: Mapping[str, torch.optim.Optimizer],
    gamma: float = 1.0,
    noise: VAEGANNoise | None = None,
    gan_form: str = "minimax",
    backward: Callable[..., None] | None = None,
) -> VAEGANLosses:
    """One training step: each network descends its own objective.

    Args:
        model: the :class:`~vae_audio.image.models.VAEGAN`.
        x: ``[B, C, H, W]`` batch.
        optimizers: ``{"encoder", "decoder", "discriminator"}`` -> optimiser of that network.
        gamma, noise, gan_form: as in :func:`vae_gan_losses`.
        backward: ``backward(loss, inputs=..., retain_graph=...)`` (Lightning's
            ``manual_backward``); default ``Tensor.backward``.

    Returns:
        The losses before the step.
    """
    losses = vae_gan_losses(model, x, gamma, noise, gan_form)
    backward = backward or (lambda loss, **kwargs: loss.backward(**kwargs))
    networks = model.networks()
    for opt in optimizers.values():
        opt.zero_grad()
    for name, loss in losses.per_network().items():
        # Gradients of each objective reach only its own network's parameters.
        backward(loss, inputs=list(networks[name].parameters()), retain_graph=True)
    for opt in optimizers.values():
        opt.step()
    return losses
