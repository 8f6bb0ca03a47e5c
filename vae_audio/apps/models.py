"""`vae-audio models`: list the shipped pretrained models and print their cards.

Reads only the cards and the file sizes (no torch import, no weights loaded).
"""

from __future__ import annotations

import argparse


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
