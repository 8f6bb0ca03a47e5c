"""The Lightning task of every image recipe (:mod:`vae_audio.image.recipe` trains it; the
VAE-GAN's task, :mod:`vae_audio.image.gan_task`, subclasses it)."""

from __future__ import annotations

from typing import Any

import torch

from vae_audio.core.training import LossOutput, VAETask
from vae_audio.image.build import MODEL_KIND, build_model
from vae_audio.image.objectives import Objective, ObjectiveConfig


class ImageVAETask(VAETask):
    """Lightning task of every image recipe; the objective kind picks the model."""

    kind = MODEL_KIND

    def __init__(self, config: dict[str, Any], image_shape, num_classes: int, dataset_size: int):
        super().__init__(config)
        objective = ObjectiveConfig.from_config(dict(config.get("objective") or {}))
        self.image_shape = tuple(int(s) for s in image_shape)
        self.num_classes = int(num_classes)
        self.dataset_size = int(dataset_size)
        self.model = build_model(
            dict(config.get("model") or {}), objective.kind, self.image_shape, self.num_classes
        )
        self.objective = Objective(objective, self.dataset_size)

    def compute_loss(self, batch: dict[str, torch.Tensor], stage: str) -> LossOutput:
        out = self.objective(self.model, batch, self.global_step)
        return LossOutput(out.loss, out.logs)

    def export_meta(self) -> dict[str, Any]:
        return {
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "dataset_size": self.dataset_size,
        }
