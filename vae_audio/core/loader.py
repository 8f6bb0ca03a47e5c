"""A DataLoader whose order, item draws and mid-epoch position survive a restart.

:class:`ResumableLoader` is what the recipes train on. Per epoch ``e`` and loader seed ``s``:

- the order is ``torch.randperm`` seeded from ``(s, e)`` (:class:`EpochSampler`), split
  across DDP ranks like ``DistributedSampler`` (rank ``r`` of ``W`` takes every ``W``-th item
  of the padded order), so Lightning's own sampler injection is not needed;
- item ``i`` is fetched inside :func:`vae_audio.core.draws.drawing` with
  ``DrawKey(s, e, i)``: its random crop or mixture is a pure function of those numbers;
- the worker base seed (torch's ``initial_seed`` in each worker, from which NumPy and
  ``random`` are seeded too) comes from ``(s, e)``, not from the global generator, so making
  an iterator draws nothing from the training RNG.

The loader is *stateful* in Lightning's sense (``state_dict`` / ``load_state_dict``): a
checkpoint written after batch ``k`` of epoch ``e`` records ``(e, k)`` and the resumed run
starts epoch ``e`` at batch ``k + 1`` without loading the skipped items. The epoch is read
when iteration starts (the first ``next``) from the callable given to :meth:`follow`
(:func:`vae_audio.core.training.train` passes the trainer's ``current_epoch``), else from
:meth:`set_epoch`. Lightning's own ``set_epoch`` calls do not reach the sampler: after a run
that stopped on ``max_steps`` mid-epoch they would name the next epoch.

``shuffle=False`` (validation) keeps the dataset order and plain indices: fixed items.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vae_audio.core.draws import DrawKey, derive_seed, drawing


def _rank_world() -> tuple[int, int]:
    """This process's rank and the world size of the default process group (else 0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochSampler(Sampler):
    """Per-epoch order of ``size`` items, this rank's share of it, from a resumable position.

    Yields :class:`DrawKey` s with ``shuffle`` (a fresh permutation every epoch), plain
    indices without. ``epoch`` and ``skip`` (items of this rank's share to leave out at the
    next iteration) are set by :class:`ResumableLoader`. The rank and world size are read
    when iterating (the process group is set up after the loaders are built).
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True) -> None:
        self.size, self.seed, self.shuffle = int(size), int(seed), bool(shuffle)
        self.epoch = 0
        self.skip = 0

    def __len__(self) -> int:
        return math.ceil(self.size / _rank_world()[1])

    def order(self, epoch: int) -> torch.Tensor:
        """All ``size`` indices in the order of ``epoch`` (``[size]`` int64)."""
        if not self.shuffle:
            return torch.arange(self.size)
        gen = torch.Generator().manual_seed(derive_seed([self.seed, epoch]))
        return torch.randperm(self.size, generator=gen)

    def __iter__(self) -> Iterator[Any]:
        rank, world = _rank_world()
        epoch, skip, self.skip = self.epoch, self.skip, 0
        order = self.order(epoch)  # [size]
        total = math.ceil(self.size / world) * world
        if total > self.size:  # pad with the first items, as DistributedSampler does
            order = order.repeat(math.ceil(total / self.size))[:total]
        for index in order[rank::world][skip:].tolist():
            yield DrawKey(self.seed, epoch, index) if self.shuffle else index


class _KeyedDataset(Dataset):
    """Fetches ``dataset[key.index]`` inside :func:`drawing` (``key`` a :class:`DrawKey`)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: DrawKey | int) -> Any:
        if not isinstance(key, DrawKey):
            return self.dataset[key]
        with drawing(key):
            return self.dataset[key.index]


def _seed_worker(worker_id: int) -> None:
    """Seed NumPy and ``random`` in a worker from its torch seed (base seed + worker id)."""
    seed = torch.initial_seed()
    np.random.seed(seed % 2**32)
    random.seed(seed)


class ResumableLoader(DataLoader):
    """DataLoader over ``dataset`` with a seeded, resumable, rank-split order (module doc).

    Args:
        dataset: map-style dataset; random per-item draws should use
            :func:`vae_audio.core.draws.epoch_rng`.
        batch_size, drop_last, num_workers, **kwargs: as for ``DataLoader`` (no ``sampler``,
            ``shuffle``, ``generator`` or ``worker_init_fn``).
        shuffle: training order (True) or the dataset's order with fixed items (False).
        seed: the loader seed ``s`` (the recipes pass ``trainer.seed``).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_workers: int = 0,
        **kwargs: Any,
    ) -> None:
        sampler = EpochSampler(len(dataset), seed, shuffle)
        super().__init__(
            _KeyedDataset(dataset) if shuffle else dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=num_workers,
            generator=torch.Generator(),
            worker_init_fn=_seed_worker,
            **kwargs,
        )
        self.epoch_sampler = sampler
        self._batches = 0  # batches of the current epoch handed out (skipped ones included)
        self._epoch_source: Callable[[], int] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Read epoch ``epoch`` next; a new epoch starts from its first batch."""
        sampler = self.epoch_sampler
        if int(epoch) != sampler.epoch:
            sampler.epoch, sampler.skip = int(epoch), 0

    def follow(self, epoch_source: Callable[[], int] | None) -> None:
        """Take the epoch from ``epoch_source()`` whenever iteration starts."""
        self._epoch_source = epoch_source

    def __iter__(self) -> Iterator[Any]:
        # A generator: nothing runs (no worker starts, no index is drawn) before the first
        # `next`, when the training loop is in the epoch it will read.
        if self._epoch_source is not None:
            self.set_epoch(self._epoch_source())
        sampler = self.epoch_sampler
        self._batches = sampler.skip // self.batch_size if self.batch_size else 0
        self.generator.manual_seed(derive_seed([sampler.seed, sampler.epoch, 1]))
        for batch in super().__iter__():
            self._batches += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "batches", "length"}``: the epoch being read, the batches of it handed
        out so far, and the batches per epoch (on this rank)."""
        return {"epoch": self.epoch_sampler.epoch, "batches": self._batches, "length": len(self)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue after ``state["batches"]`` batches of epoch ``state["epoch"]`` (at the next
        epoch when that one was finished)."""
        epoch, batches = int(state["epoch"]), int(state["batches"])
        if batches >= int(state["length"]):
            epoch, batches = epoch + 1, 0
        self.epoch_sampler.epoch = epoch
        self.epoch_sampler.skip = batches * int(self.batch_size or 1)
