"""Training objectives of the image VAEs, built from the core regularisers.

Reduction everywhere: the reconstruction NLL is summed over pixels (and channels), the KL
over latent dimensions, and both are averaged over the batch: **nats per image**. ``step`` is
the global optimiser step; β and the capacity ``C`` are :class:`~vae_audio.core.schedules.
Schedule` s of it.

==========  ===========================================================================
kind        loss (minimised)
==========  ===========================================================================
vae         ``NLL + KL``                                 (Kingma & Welling 2014)
beta_h      ``NLL + β KL``                               (Higgins et al. 2017)
beta_b      ``NLL + γ |KL − C(step)|``                   (Burgess et al. 2018, Eq. (8))
tcvae       ``NLL + α MI + β TC + γ dimKL``               (Chen et al. 2018, Eq. (4))
infovae     ``NLL + (1 − α) KL + (α + λ − 1) MMD(q(z), p(z))``  (Zhao et al. 2019)
cvae        ``NLL + β KL`` with the label as condition   (Sohn et al. 2015)
jmvae       ``NLL_x + NLL_y + KL + α [KL(q_xy‖q_x) + KL(q_xy‖q_y)]``  (Suzuki et al. 2016)
affine      ``NLL + β KL`` of :class:`~vae_audio.image.models.AffineVAE`
gmm_vae     ``NLL + β KL``, KL to the mixture prior by Monte Carlo (one sample)
vq_vae      ``NLL + β_c ‖z_e − sg(e)‖² − log p(c)``  (van den Oord et al. 2017, Eq. (3))
vae_gan     three per-network objectives (Larsen et al. 2016), see
            :mod:`vae_audio.image.vae_gan_objective`; here the encoder's ``KL + L_llike``
==========  ===========================================================================

``vq_vae``: ``β_c`` is ``commitment``; the codebook moves by EMA, not by this loss; the last
term is the code prior's NLL on the detached code indices (it trains only the prior).
``vae_gan``: ``gamma`` is the paper's γ (decoder: ``γ L_llike − L_GAN``), ``gan_form``
``minimax`` (Algorithm 1) or ``non_saturating``; its training step lives in
:mod:`vae_audio.image.gan_task`, and :class:`Objective` gives the validation loss.

In ``beta_b`` the KL inside ``|·|`` is the batch mean, as in the paper. ``tcvae`` uses the
minibatch estimators of :func:`vae_audio.core.objectives.tc_decomposition` (``mws`` or
``mss``), which need the training-set size ``N``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from vae_audio.core.objectives import capacity_kl, mmd, tc_decomposition
from vae_audio.core.schedules import Schedule
from vae_audio.errors import VaeAudioError
from vae_audio.image.vae_gan_objective import GAN_FORMS, vae_gan_losses

KINDS = (
    *("vae", "beta_h", "beta_b", "tcvae", "infovae", "cvae", "jmvae", "affine"),
    *("gmm_vae", "vq_vae", "vae_gan"),
)


@dataclass
class ImageLoss:
    """Scalar loss to minimise and detached scalars to log (nats per image)."""

    loss: Tensor
    logs: dict[str, Tensor | float] = field(default_factory=dict)


@dataclass
class ObjectiveConfig:
    """Parameters of every objective (unused ones are ignored by a given kind).

    Attributes:
        kind: one of :data:`KINDS`.
        beta: β (a number or a schedule spec, see :class:`~vae_audio.core.schedules.Schedule`).
        capacity: ``C`` in nats for ``beta_b`` (schedule spec, e.g. a linear warm-up to 25).
        gamma: γ of ``beta_b`` (e.g. 1000), of ``tcvae``'s dimension-wise KL (1) and of
            ``vae_gan`` (weight of the feature reconstruction in the decoder's objective).
        alpha: α of ``tcvae`` (MI weight), ``infovae`` and ``jmvae``.
        lam: λ of ``infovae``.
        estimator: ``mss`` or ``mws`` (``tcvae``).
        kernel: ``rbf`` or ``imq`` (``infovae``).
        commitment: β of the ``vq_vae`` commitment loss (0.25 in the paper).
        gan_form: ``minimax`` or ``non_saturating`` (``vae_gan``'s decoder term).
    """

    kind: str = "vae"
    beta: Any = 1.0
    capacity: Any = 0.0
    gamma: float = 1.0
    alpha: float = 1.0
    lam: float = 1.0
    estimator: str = "mss"
    kernel: str = "imq"
    commitment: float = 0.25
    gan_form: str = "minimax"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise VaeAudioError(f"objective kind {self.kind!r} unknown; use one of {KINDS}")
        if self.estimator not in ("mss", "mws"):
            raise VaeAudioError(f"objective.estimator {self.estimator!r}: use mss or mws")
        if self.kernel not in ("rbf", "imq"):
            raise VaeAudioError(f"objective.kernel {self.kernel!r}: use rbf or imq")
        if self.gan_form not in GAN_FORMS:
            raise VaeAudioError(f"objective.gan_form {self.gan_form!r}: use one of {GAN_FORMS}")

    @classmethod
    def from_config(cls, spec: dict[str, Any]) -> ObjectiveConfig:
        unknown = set(spec) - set(cls.__dataclass_fields__)
        if unknown:
            raise VaeAudioError(
                f"objective section has unknown key(s) {sorted(unknown)}; "
                f"use {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**spec)


class Objective:
    """``objective(model, batch, step) -> ImageLoss`` for one :class:`ObjectiveConfig`.

    Args:
        config: the objective parameters.
        dataset_size: number of training images (``tcvae``'s estimators need it).
    """

    def __init__(self, config: ObjectiveConfig, dataset_size: int = 1) -> None:
        self.config = config
        self.dataset_size = int(dataset_size)
        self.beta = Schedule.from_config(config.beta)
        self.capacity = Schedule.from_config(config.capacity)

    def __call__(self, model, batch: dict[str, Tensor], step: int) -> ImageLoss:
        c = self.config
        x, label = batch["x"], batch.get("label")
        if c.kind == "jmvae":
            if label is None:
                raise VaeAudioError("jmvae needs labelled data (digits or mnist); change data.name")
            out = model(x, label)
            logs = {
                "nll_x": out.recon_nll_x.mean(),
                "nll_y": out.recon_nll_y.mean(),
                "kl": out.kl.mean(),
                "kl_joint_image": out.kl_x.mean(),
                "kl_joint_label": out.kl_y.mean(),
            }
            return ImageLoss(out.loss(c.alpha), _detach(logs))
        if c.kind == "vq_vae":
            return self._vq_vae(model, x)
        if c.kind == "vae_gan":
            losses = vae_gan_losses(model, x, c.gamma, gan_form=c.gan_form)
            return ImageLoss(losses.encoder, losses.logs())
        out = model(x, label)
        nll, kl = out.recon_nll.mean(), out.kl.mean()  # nats per image
        logs = {"nll": nll, "kl": kl, "elbo": -(nll + kl)}
        beta = self.beta(step)
        if c.kind == "vae":
            loss = nll + kl
        elif c.kind in ("beta_h", "cvae", "affine", "gmm_vae"):
            loss = nll + beta * kl
            logs["beta"] = beta
        elif c.kind == "beta_b":
            cap = self.capacity(step)
            loss = nll + capacity_kl(kl, cap, c.gamma)
            logs["capacity"] = cap
        elif c.kind == "tcvae":
            if self.dataset_size < x.shape[0]:
                raise VaeAudioError(
                    f"tcvae: dataset_size={self.dataset_size} is smaller than the batch "
                    f"({x.shape[0]}); the estimators need the training-set size"
                )
            terms = tc_decomposition(out.z, out.posterior, self.dataset_size, c.estimator)
            mi, tc, dim_kl = (t.mean() for t in terms)
            loss = nll + c.alpha * mi + beta * tc + c.gamma * dim_kl
            logs.update(mi=mi, tc=tc, dimwise_kl=dim_kl, beta=beta)
        else:  # infovae
            prior = torch.randn_like(out.z)
            divergence = mmd(out.z, prior, kernel=c.kernel)
            loss = nll + (1.0 - c.alpha) * kl + (c.alpha + c.lam - 1.0) * divergence
            logs["mmd"] = divergence
        return ImageLoss(loss, _detach(logs))

    def _vq_vae(self, model, x: Tensor) -> ImageLoss:
        out = model(x)
        nll, prior_nll = out.recon_nll.mean(), out.kl.mean()  # nats per image
        logs = {
            "nll": nll,
            "prior_nll": prior_nll,
            "elbo": -(nll + prior_nll),
            "commitment": out.commitment.mean(),
            "perplexity": out.perplexity,
            "codebook_usage": out.usage,
        }
        return ImageLoss(out.loss(self.config.commitment), _detach(logs))


def _detach(logs: dict[str, Tensor | float]) -> dict[str, Tensor | float]:
    return {k: v.detach() if isinstance(v, Tensor) else float(v) for k, v in logs.items()}
