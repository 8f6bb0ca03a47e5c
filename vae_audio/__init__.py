"""vae_audio: unsupervised multichannel audio source separation with VAE speech priors."""

from vae_audio.errors import VaeAudioError

__version__ = "0.1.0"

__all__ = ["VaeAudioError", "__version__"]
