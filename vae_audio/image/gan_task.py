"""Lightning task of the VAE-GAN: manual optimisation with one optimiser per network.

Each training batch runs :func:`~vae_audio.image.vae_gan_objective.vae_gan_step` (from
``compute_loss``, which the base class's ``training_step`` calls): one
forward pass, the encoder, decoder and discriminator gradients each from its own objective
(Larsen et al. 2016, Algorithm 1), then the three optimisers step. The optimisers are built
from the recipe's ``optim`` section (same settings for the three). Lightning counts every
optimiser step, so ``trainer.global_step`` and ``trainer.max_steps`` advance by 3 per batch
(the logged curves' step axis counts batches).

Restrictions of manual optimisation: no ``optim.scheduler``, no ``trainer.gradient_clip_val``
and no ``trainer.accumulate_grad_batches`` other than 1. Validation reports the encoder's
objective ``KL + L_llike`` as ``val/loss``.
"""

from __future__ import annotations

from typing import Any

import torch

from vae_audio.core.optim import build_optimizer
from vae_audio.core.training import LossOutput
from vae_audio.errors import VaeAudioError
from vae_audio.image.task import ImageVAETask
from vae_audio.image.vae_gan_objective import vae_gan_step

_ORDER = ("encoder", "decoder", "discriminator")


class VAEGANTask(ImageVAETask):
    """:class:`ImageVAETask` for ``objective.kind: vae_gan``."""

    def __init__(self, config: dict[str, Any], image_shape, num_classes: int, dataset_size: int):
        super().__init__(config, image_shape, num_classes, dataset_size)
        self.automatic_optimization = False
        t, o = self.config["trainer"], self.config["optim"]
        if o["scheduler"] is not None:
            raise VaeAudioError(
                "vae_gan trains three optimisers by hand; set optim.scheduler: null"
            )
        if t["gradient_clip_val"] is not None or int(t["accumulate_grad_batches"]) != 1:
            raise VaeAudioError(
                "vae_gan uses manual optimisation: set trainer.gradient_clip_val: null and "
                "trainer.accumulate_grad_batches: 1"
            )

    def configure_optimizers(self):
        networks = self.model.networks()
        return [
            build_optimizer(networks[name].parameters(), self.config["optim"]) for name in _ORDER
        ]

    def compute_loss(self, batch: dict[str, torch.Tensor], stage: str) -> LossOutput:
        """Training: one :func:`vae_gan_step` (the three updates); validation: the encoder's
        objective. The base class's ``training_step`` calls this and logs the result."""
        if stage != "train":
            return super().compute_loss(batch, stage)
        objective = self.objective.config
        losses = vae_gan_step(
            self.model,
            batch["x"],
            dict(zip(_ORDER, self.optimizers(), strict=True)),
            gamma=objective.gamma,
            gan_form=objective.gan_form,
            backward=self.manual_backward,
        )
        return LossOutput(losses.encoder.detach(), losses.logs())
