"""Small pretrained models shipped inside the package.

Each entry was trained on this toolkit's offline TTS corpus by the command in
:data:`RECIPES`; retraining with it reproduces the file (up to floating-point
non-determinism of the platform). :data:`CARDS` says what each model was trained on, how
well it separates and its known limits (``vae-audio models`` prints them).

``pretrained("neural-fca")`` returns a :class:`PretrainedNeuralFCA`: the
:class:`~vae_audio.neural_fca.model.NeuralFCA` module itself, plus ``.card``,
``.separate(wav, sr)`` and ``.separate_file(path)``. ``pretrained("speech-vae")`` returns the
:class:`~vae_audio.speech.model.SpeechVAE` with its ``.card``.
"""

from __future__ import annotations

from pathlib import Path

from vae_audio._pretrained.cards import CARDS, ModelCard
from vae_audio.errors import VaeAudioError

_HERE = Path(__file__).resolve().parent

# name -> file next to this module
SHIPPED: dict[str, str] = {
    "speech-vae": "speech_vae.pt",
    "neural-fca": "neural_fca.pt",
}

# name -> command that regenerates the file (run from the repository root)
RECIPES: dict[str, str] = {name: card.regenerate for name, card in CARDS.items()}

__all__ = ["CARDS", "RECIPES", "SHIPPED", "ModelCard", "card", "pretrained", "pretrained_path"]


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


def card(name: str) -> ModelCard:
    """The :class:`ModelCard` of the shipped model ``name`` (no weights are loaded)."""
    if name not in CARDS:
        raise VaeAudioError(f"no shipped model named {name!r}; shipped: {', '.join(sorted(CARDS))}")
    return CARDS[name]


def pretrained(name: str = "speech-vae", device=None):
    """Load a shipped model by name; ``vae_audio.pretrained("speech-vae")`` calls this.

    Returns the model in eval mode with its ``card``: a :class:`PretrainedNeuralFCA` for
    ``"neural-fca"`` (a ``NeuralFCA`` with ``separate``/``separate_file``), the
    ``SpeechVAE`` for ``"speech-vae"``.
    """
    path = pretrained_path(name)
    if name == "speech-vae":
        from vae_audio.speech.prior import load_speech_prior

        model = load_speech_prior(path, device=device)
        model.card = CARDS[name]
        return model
    if name == "neural-fca":
        from vae_audio._pretrained.separator import PretrainedNeuralFCA

        model = PretrainedNeuralFCA.from_file(path, CARDS[name])
        return model if device is None else model.to(device)
    raise VaeAudioError(f"no loader for shipped model {name!r}")


def __getattr__(name: str):
    if name == "PretrainedNeuralFCA":  # imports torch and the model code on first use
        from vae_audio._pretrained.separator import PretrainedNeuralFCA

        return PretrainedNeuralFCA
    raise AttributeError(f"module 'vae_audio._pretrained' has no attribute {name!r}")
