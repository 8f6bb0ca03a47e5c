"""The shipped pretrained models: loading them (:func:`pretrained`, which is
``vae_audio.pretrained``) and ``vae-audio models``, which lists them and prints their cards
(reading only the cards and the file sizes: no torch import, no weights loaded).
"""

from __future__ import annotations

import argparse


def pretrained(name: str = "speech-vae", device=None):
    """Load a shipped model by name; ``vae_audio.pretrained("speech-vae")`` calls this.

    ``pretrained("neural-fca")`` is the :class:`~vae_audio.neural_fca.model.NeuralFCA`
    module itself plus ``.card``, ``.separate(wav, sr)`` and ``.separate_file(path)``.

    Returns the model in eval mode with its ``card``: a :class:`PretrainedNeuralFCA` for
    ``"neural-fca"`` (a ``NeuralFCA`` with ``separate``/``separate_file``), the
    ``SpeechVAE`` for the speech priors (``"speech-vae"``, ``"speech-vae-conv"``,
    ``"speech-vae-conv16"``).
    """
    from vae_audio._pretrained import CARDS, pretrained_path

    path = pretrained_path(name)
    if CARDS[name].talkers is None:  # a speech prior
        from vae_audio.speech.prior import load_speech_prior

        model = load_speech_prior(path, device=device)
        model.card = CARDS[name]
        return model
    if name == "neural-fca":
        from vae_audio._pretrained.separator import PretrainedNeuralFCA

        model = PretrainedNeuralFCA.from_file(path, CARDS[name])
        return model if device is None else model.to(device)
    from vae_audio.errors import VaeAudioError

    raise VaeAudioError(f"no loader for shipped model {name!r}")


def models_text(names: list[str] | None = None) -> str:
    """The listing ``vae-audio models`` prints: one card per shipped model (or per name)."""
    from vae_audio._pretrained import _HERE, SHIPPED, card

    blocks = []
    for name in names or sorted(SHIPPED):
        text = card(name).to_text()
        path = _HERE / SHIPPED[name]
        state = f"{path.stat().st_size / 2**20:.1f} MB" if path.is_file() else "missing"
        entry = name.replace("-", "_")
        blocks.append(
            f"{text}\n  file: {path} ({state})\n"
            f'  load: vae_audio.pretrained("{name}"), or '
            f'torch.hub.load(REPO_DIR, "{entry}", source="local")'
        )
    return "\n\n".join(blocks)


def _run(args: argparse.Namespace) -> int:
    print(models_text(args.names or None))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "models",
        help="list the shipped pretrained models and their cards",
        description="List the pretrained models shipped inside the package with their cards: "
        "training data, array geometry, talkers, sample rate, measured SDR and known limits.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="only these models")
    p.set_defaults(func=_run)
