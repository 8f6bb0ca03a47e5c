"""Logging of the package: library code reports progress and results through
``logging.getLogger(__name__)`` (under the ``vae_audio`` logger, silent by default for
Python users, who configure logging as they like), never with ``print``.

The command line (:func:`cli_logging`) sends those records to stderr as
``vae-audio: <message>`` at INFO, or only warnings and errors under ``-q/--quiet``, which also
turns off every progress bar (tqdm's ``TQDM_DISABLE``, which Lightning's bar follows too).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

LOGGER = logging.getLogger("vae_audio")
LOGGER.addHandler(logging.NullHandler())


@contextlib.contextmanager
def cli_logging(quiet: bool = False) -> Iterator[None]:
    """Route the package's log records to stderr for one command (see the module docstring);
    everything is put back afterwards."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vae-audio: %(message)s"))
    level, propagate = LOGGER.level, LOGGER.propagate
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.WARNING if quiet else logging.INFO)
    LOGGER.propagate = False
    saved = os.environ.get("TQDM_DISABLE")
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(level)
        LOGGER.propagate = propagate
        if quiet:
            if saved is None:
                os.environ.pop("TQDM_DISABLE", None)
            else:
                os.environ["TQDM_DISABLE"] = saved
