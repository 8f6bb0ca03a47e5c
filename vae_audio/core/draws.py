"""Random draws of dataset items as pure functions of ``(seed, epoch, index)``.

A training dataset that crops, mixes or augments at random must draw the same numbers for
item ``i`` of epoch ``e`` in every run with the same seed, whatever process, DataLoader worker
or restart fetches it. :class:`~vae_audio.core.loader.ResumableLoader` fetches training items
inside :func:`drawing` with a :class:`DrawKey` (the loader's seed, the epoch, the item's index
in the loader's dataset); a dataset gets its generator from :func:`epoch_rng` (or reads
:func:`current_draw` itself). Wrappers such as ``ConcatDataset`` and ``Subset`` are
transparent: the key holds the outer index, so repeated parts draw differently.

Nothing here reads the process id, the clock or a global generator.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

import numpy as np


class DrawKey(NamedTuple):
    """What the draws of one fetched training item depend on."""

    seed: int
    epoch: int
    index: int


_CURRENT: ContextVar[DrawKey | None] = ContextVar("vae_audio_draw", default=None)


@contextmanager
def drawing(key: DrawKey) -> Iterator[None]:
    """Make ``key`` the :func:`current_draw` while the item is fetched."""
    token = _CURRENT.set(key)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_draw() -> DrawKey | None:
    """The key of the item being fetched by a training loader, else None."""
    return _CURRENT.get()


def epoch_rng(seed: int, index: int) -> np.random.Generator:
    """``numpy.random.default_rng([seed, epoch, index])`` for the item being fetched.

    ``seed`` is the dataset's; epoch and index come from :func:`current_draw`. Outside a
    training loader (direct ``dataset[index]``, plain ``DataLoader``) the draws are those of
    epoch 0 at ``index``, so they are reproducible there too.
    """
    key = current_draw()
    epoch, index = (key.epoch, key.index) if key is not None else (0, int(index))
    return np.random.default_rng([int(seed), epoch, index])


def derive_seed(entropy: Sequence[int]) -> int:
    """A 63-bit seed from a list of non-negative integers (``numpy.random.SeedSequence``)."""
    state = np.random.SeedSequence([int(e) for e in entropy]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))
