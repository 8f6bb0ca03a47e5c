"""Image VAE recipes on the shared core.

Data (:mod:`.datasets`): procedural dSprites with its ground-truth factors, digits with
recorded affine factors, local MNIST-format and CelebA folders. Models (:mod:`.models`):
(conditional) VAE, JMVAE, affine-transform VAE, VQ-VAE (:mod:`.vq`, with a learned code
prior), VAE-GAN (:mod:`.vae_gan_objective`, :mod:`.gan_task`) and the mixture-prior VAE
(:mod:`.mixture_prior`), trained with the objectives of :mod:`.objectives` (β-VAE H/B,
β-TCVAE, InfoVAE, ...). Disentanglement, clustering and sample-quality metrics in
:mod:`.metrics`; the sample-quality protocol in :mod:`.sample_quality`; figures in
:mod:`.plots`; the ``image-vae`` trainer in :mod:`.recipe`.
"""

from vae_audio.image.build import build_model, load_image_model
from vae_audio.image.objectives import ImageLoss, Objective, ObjectiveConfig

__all__ = ["ImageLoss", "Objective", "ObjectiveConfig", "build_model", "load_image_model"]
