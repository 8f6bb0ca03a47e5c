"""torch.hub entry points for the models shipped with vae_audio.

    model = torch.hub.load("path/to/vae_audio", "neural_fca", source="local")
    result = model.separate(wav, sr)  # wav [4, S]: 2 talkers + noise
    print(model.card.to_text())

The weights ship inside the repository (``vae_audio/_pretrained/``): nothing is downloaded.
"""

dependencies = ["torch", "torchaudio", "numpy", "scipy", "soundfile", "yaml"]


def _shipped(name: str, pretrained: bool, device):
    """``vae_audio.pretrained(name)``; only the pretrained weights are offered."""
    if not pretrained:
        raise ValueError("only the pretrained model is offered; train others with vae-audio")
    import vae_audio

    return vae_audio.pretrained(name, device=device)


def neural_fca(pretrained: bool = True, device=None):
    """The shipped Neural FastFCA separator (4 mics, 2 talkers + noise, 16 kHz):
    ``vae_audio.pretrained("neural-fca")``, a ``NeuralFCA`` module with ``.separate(wav, sr)``,
    ``.separate_file(path)`` and ``.card``."""
    return _shipped("neural-fca", pretrained, device)


def speech_vae(pretrained: bool = True, device=None):
    """The shipped speech prior (``vae_audio.pretrained("speech-vae")``) with its ``.card``."""
    return _shipped("speech-vae", pretrained, device)


def speech_vae_conv(pretrained: bool = True, device=None):
    """The shipped temporal speech prior, single-channel ``vae-nmf``'s default
    (``vae_audio.pretrained("speech-vae-conv")``) with its ``.card``."""
    return _shipped("speech-vae-conv", pretrained, device)


def speech_vae_conv16(pretrained: bool = True, device=None):
    """The shipped temporal speech prior trained twice as long, the multichannel VAE methods'
    default (``vae_audio.pretrained("speech-vae-conv16")``) with its ``.card``."""
    return _shipped("speech-vae-conv16", pretrained, device)
