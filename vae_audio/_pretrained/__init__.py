"""Small pretrained models shipped inside the package.

Each entry was trained on this toolkit's offline TTS corpus by the command in
:data:`RECIPES`; retraining with it reproduces the file (up to floating-point
non-determinism of the platform).
"""

from __future__ import annotations

from pathlib import Path

from vae_audio.errors import VaeAudioError

_HERE = Path(__file__).resolve().parent

# name -> file next to this module
SHIPPED: dict[str, str] = {
    "speech-vae": "speech_vae.pt",
    "neural-fca": "neural_fca.pt",
}

# name -> command that regenerates the file (run from the repository root)
RECIPES: dict[str, str] = {
    "speech-vae": "bash recipes/speech_vae/make_pretrained.sh",
    "neural-fca": "bash recipes/neural_fca/make_pretrained.sh",
}


def pretrained_path(name: str) -> Path:
    """Path of the shipped model ``name``.

    Raises:
        VaeAudioError: unknown name, or the file is missing from this installation.
    """
    if name not in SHIPPED:
        raise VaeAudioError(
            f"no shipped model named {name!r}; shipped: {', '.join(sorted(SHIPPED))}, "
            "or pass the path of a model.pt"
        )
    path = _HERE / SHIPPED[name]
    if not path.is_file():
        raise VaeAudioError(
            f"shipped model {name!r} is missing from this installation ({path}); "
            f"regenerate it with `{RECIPES[name]}` or pass a model.pt path"
        )
    return path


def pretrained(name: str = "speech-vae", device=None):
    """Load a shipped model by name; ``vae_audio.pretrained("speech-vae")`` calls this."""
    path = pretrained_path(name)
    if name == "speech-vae":
        from vae_audio.speech.prior import load_speech_prior

        return load_speech_prior(path, device=device)
    if name == "neural-fca":
        from vae_audio.neural_fca import load_neural_fca

        model = load_neural_fca(path)
        return model if device is None else model.to(device)
    raise VaeAudioError(f"no loader for shipped model {name!r}")
