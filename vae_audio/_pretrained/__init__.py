"""Small pretrained models shipped inside the package.

Each entry was trained on this toolkit's offline corpora (TTS voices; the recorded prompts
for the ``speech-vae-conv*`` priors) by the command in :data:`RECIPES`; retraining with it
reproduces the file (up to floating-point non-determinism of the platform). :data:`CARDS` says what
each model was trained on, how well it separates and its known limits (``vae-audio
models`` prints them).

This package only names the files and their cards, and imports no model code, so the model
code may ask it for a default file (the speech prior does). Loading them is
:func:`vae_audio.apps.models.pretrained` (``vae_audio.pretrained``).
"""

from __future__ import annotations

from pathlib import Path

from vae_audio._pretrained.cards import CARDS, ModelCard
from vae_audio.errors import VaeAudioError

_HERE = Path(__file__).resolve().parent

# name -> file next to this module
SHIPPED: dict[str, str] = {
    "speech-vae": "speech_vae.pt",
    "speech-vae-conv": "speech_vae_conv.pt",
    "speech-vae-conv16": "speech_vae_conv16.pt",
    "neural-fca": "neural_fca.pt",
}

# name -> command that regenerates the file (run from the repository root)
RECIPES: dict[str, str] = {name: card.regenerate for name, card in CARDS.items()}

__all__ = ["CARDS", "RECIPES", "SHIPPED", "ModelCard", "card", "pretrained_path"]


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
