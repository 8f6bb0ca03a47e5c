"""Image VAE recipes on the shared core.

Data (:mod:`.datasets`): procedural dSprites with its ground-truth factors, digits with
recorded affine factors, local MNIST-format and CelebA folders. Models (:mod:`.models`):
(conditional) VAE, JMVAE, affine-transform VAE, trained with the objectives of
:mod:`.objectives` (β-VAE H/B, β-TCVAE, InfoVAE, ...). Disentanglement metrics in
:mod:`.metrics`; figures in :mod:`.plots`; the ``image-vae`` trainer in :mod:`.recipe`.
"""

from vae_audio.image.build import build_model, load_image_model
from vae_audio.image.objectives import ImageLoss, Objective, ObjectiveConfig

__all__ = ["ImageLoss", "Objective", "ObjectiveConfig", "build_model", "load_image_model"]
