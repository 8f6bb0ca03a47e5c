"""`vae-audio`: the command-line entry point.

Subcommands live next to the code they drive; each such module exposes
``register(subparsers)`` which adds its parser and sets ``func`` to a callable taking the
parsed ``argparse.Namespace`` and returning an exit code. Training recipes are listed in
``_TRAINERS`` and share one ``train`` subcommand.

Expected failures (:class:`vae_audio.errors.VaeAudioError`) print one line and exit 2, as do
bad command lines (:mod:`vae_audio.cli_types`: numeric options carry their domain).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from vae_audio.errors import VaeAudioError

# Modules that add top-level subcommands, in the order `--help` lists them.
_COMMAND_MODULES: tuple[str, ...] = (
    "vae_audio.data.cli",
    "vae_audio.eval.cli",
    "vae_audio.bench.cli",
    "vae_audio.apps.separate",
    "vae_audio.apps.demo",
    "vae_audio.apps.models",
)

# `vae-audio train NAME`: NAME -> "module:function", the function taking
# (config: dict, resume: bool) and returning a vae_audio.core.training.TrainResult.
_TRAINERS: dict[str, str] = {
    "speech-vae": "vae_audio.speech.recipe:train_from_config",
    "image-vae": "vae_audio.image.recipe:train_from_config",
    "neural-fca": "vae_audio.neural_fca.recipe:train_from_config",
}


def _resolve(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def _run_train(args: argparse.Namespace) -> int:
    from vae_audio.core.config import load_config

    overrides = [*args.overrides, *(["trainer.enable_progress_bar=false"] if args.quiet else [])]
    config = load_config(args.config, overrides)
    result = _resolve(_TRAINERS[args.recipe])(config, resume=args.resume)
    if result.summary:
        print(result.summary)
    return 0


def _register_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model from a YAML recipe",
        description="Train a model from a YAML recipe; key=value pairs override the recipe "
        "(dotted keys reach nested sections, values are parsed as YAML).",
    )
    p.add_argument("recipe", choices=sorted(_TRAINERS), help="what to train")
    p.add_argument("--config", required=True, help="recipe YAML file")
    p.add_argument("--resume", action="store_true", help="continue from the run's last.ckpt")
    # Overrides may sit anywhere after the recipe name; main() collects them (argparse
    # cannot mix a variable-length positional with options).
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=_run_train, accepts_overrides=True)


def build_parser() -> argparse.ArgumentParser:
    from vae_audio.cli_types import OneLineParser

    parser = OneLineParser(
        prog="vae-audio",
        description="Unsupervised multichannel source separation with VAE speech priors.",
    )
    from vae_audio import __version__

    parser.add_argument("--version", action="version", version=f"vae-audio {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    if _TRAINERS:
        _register_train(subparsers)
    _add_quiet(parser)
    return parser


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    """Give every command ``-q/--quiet`` (progress bars and notes off; warnings and errors
    still print), unless it declares its own."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subparsers:
        for sub in action.choices.values():
            _add_quiet(sub)
    if subparsers or parser.prog == "vae-audio":
        return
    if not any("--quiet" in a.option_strings for a in parser._actions):
        parser.add_argument(
            "-q", "--quiet", action="store_true",
            help="no progress bars or notes (warnings and errors still print)",
        )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not getattr(args, "accepts_overrides", False) or any("=" not in e for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from vae_audio.log import cli_logging

    try:
        with cli_logging(quiet=getattr(args, "quiet", False)):
            return int(args.func(args) or 0)
    except VaeAudioError as err:
        print(f"vae-audio: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vae-audio: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
