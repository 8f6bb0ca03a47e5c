"""Image VAE models: (conditional) VAE, JMVAE, affine-transform VAE, VQ-VAE, VAE-GAN and the
mixture-prior VAE."""

from vae_audio.image.models.affine_vae import AffineVAE
from vae_audio.image.models.gmm_vae import MixturePriorVAE, MixtureVAEOutput
from vae_audio.image.models.image_vae import ImageVAE
from vae_audio.image.models.jmvae import JMVAE, JMVAEOutput, kl_diagonal
from vae_audio.image.models.vae_gan import VAEGAN
from vae_audio.image.models.vq_vae import VQVAE, VQVAEOutput

__all__ = [
    "JMVAE",
    "VAEGAN",
    "VQVAE",
    "AffineVAE",
    "ImageVAE",
    "JMVAEOutput",
    "MixturePriorVAE",
    "MixtureVAEOutput",
    "VQVAEOutput",
    "kl_diagonal",
]
