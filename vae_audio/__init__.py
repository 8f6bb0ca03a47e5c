"""vae_audio: unsupervised multichannel audio source separation with VAE speech priors.

Top-level API::

    vae_audio.separate(mixture, method="fastmnmf2", n_src=2, ...)  # -> SeparationResult
    vae_audio.pretrained("speech-vae")                            # the shipped speech prior
"""

from vae_audio.errors import VaeAudioError

__version__ = "0.1.0"

__all__ = ["VaeAudioError", "__version__", "pretrained", "separate"]


def pretrained(name: str = "speech-vae", device=None):
    """Load a model shipped with the package by name (see ``vae_audio._pretrained.SHIPPED``)."""
    from vae_audio.apps.models import pretrained as _load

    return _load(name, device=device)


def separate(mixture, method: str = "fastmnmf2", n_src: int = 2, **opts):
    """Separate a mixture ``[M, S]`` or ``[B, M, S]``; see :func:`vae_audio.separation.separate`."""
    from vae_audio.separation import separate as _separate

    return _separate(mixture, method=method, n_src=n_src, **opts)
