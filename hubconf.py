"""torch.hub entry points for the models shipped with vae_audio.

    model = torch.hub.load("path/to/vae_audio", "neural_fca", source="local")
    result = model.separate(wav, sr)  # wav [4, S]: 2 talkers + noise
    print(model.card.to_text())

The weights ship inside the repository (``vae_audio/_pretrained/``): nothing is downloaded.
"""

dependencies = ["torch", "torchaudio", "numpy", "scipy", "soundfile", "yaml"]


def neural_fca(pretrained: bool = True, device=None):
    """The shipped Neural FastFCA separator (4 mics, 2 talkers + noise, 16 kHz):
    ``vae_audio.pretrained("neural-fca")``, a ``NeuralFCA`` module with ``.separate(wav, sr)``,
    ``.separate_file(path)`` and ``.card``."""
    if not pretrained:
        raise ValueError("only the pretrained model is offered; train others with vae-audio")
    import vae_audio

    return vae_audio.pretrained("neural-fca", device=device)


def speech_vae(pretrained: bool = True, device=None):
    """The shipped speech prior (``vae_audio.pretrained("speech-vae")``) with its ``.card``."""
    if not pretrained:
        raise ValueError("only the pretrained model is offered; train others with vae-audio")
    import vae_audio

    return vae_audio.pretrained("speech-vae", device=device)


def speech_vae_conv(pretrained: bool = True, device=None):
    """The shipped temporal speech prior, single-channel ``vae-nmf``'s default
    (``vae_audio.pretrained("speech-vae-conv")``) with its ``.card``."""
    if not pretrained:
        raise ValueError("only the pretrained model is offered; train others with vae-audio")
    import vae_audio

    return vae_audio.pretrained("speech-vae-conv", device=device)
