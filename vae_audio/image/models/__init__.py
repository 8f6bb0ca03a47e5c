"""Image VAE models: (conditional) VAE, JMVAE and the affine-transform VAE."""

from vae_audio.image.models.affine_vae import AffineVAE
from vae_audio.image.models.image_vae import ImageVAE
from vae_audio.image.models.jmvae import JMVAE, JMVAEOutput, kl_diagonal

__all__ = ["JMVAE", "AffineVAE", "ImageVAE", "JMVAEOutput", "kl_diagonal"]
