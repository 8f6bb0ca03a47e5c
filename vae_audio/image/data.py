"""The ``data`` section of an image recipe -> train/validation sets and loaders.

::

    data:
      name: dsprites     # dsprites | digits | mnist | fashion_mnist | celeba
      root: null         # folder of the IDX files (mnist, fashion_mnist) or images (celeba)
      num_train: 20000   # dsprites: random grid subset (null: all 737,280 minus val);
                         # digits: warped images; others: first N (null: all)
      num_val: 1000
      batch_size: 64
      num_workers: 0
      seed: 0            # subset draw / digit warps
      binarise: false    # mnist-format only

Every batch is a dict with ``x [B, C, H, W]`` in ``[0, 1]`` and, when known, ``label [B]``
and ``factors [B, K]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from vae_audio.core.loader import ResumableLoader
from vae_audio.errors import VaeAudioError
from vae_audio.image.datasets import (
    AffineDigits,
    DSprites,
    GroundTruthData,
    GroundTruthDataset,
    IdxImages,
    ImageFolder64,
    collate_batch,
)

DATA_DEFAULTS: dict[str, Any] = {
    "name": "dsprites",
    "root": None,
    "num_train": 20000,
    "num_val": 1000,
    "batch_size": 64,
    "num_workers": 0,
    "seed": 0,
    "binarise": False,
}


@dataclass
class ImageData:
    """Train/validation sets and what the model builder needs to know about them."""

    train: Dataset
    val: Dataset
    image_shape: tuple[int, int, int]
    num_classes: int
    ground_truth: GroundTruthData | None
    batch_size: int
    num_workers: int

    def loaders(self, seed: int = 0) -> tuple[DataLoader, DataLoader]:
        """Training (shuffled per epoch from ``seed``, resumable mid-epoch) and validation
        loaders (:class:`~vae_audio.core.loader.ResumableLoader`)."""
        common = dict(
            batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=collate_batch
        )
        return (
            ResumableLoader(self.train, shuffle=True, seed=seed, drop_last=True, **common),
            ResumableLoader(self.val, shuffle=False, seed=seed, **common),
        )


def with_data_defaults(cfg: dict[str, Any] | None) -> dict[str, Any]:
    cfg = dict(cfg or {})
    unknown = set(cfg) - set(DATA_DEFAULTS)
    if unknown:
        raise VaeAudioError(
            f"data section has unknown key(s) {sorted(unknown)}; use {sorted(DATA_DEFAULTS)}"
        )
    return {**DATA_DEFAULTS, **cfg}


def _split(n_total: int, n_train: int | None, n_val: int, seed: int):
    if n_val < 1 or n_val >= n_total:
        raise VaeAudioError(f"data.num_val={n_val} must lie in [1, {n_total - 1}]")
    perm = np.random.RandomState(seed).permutation(n_total)
    n_train = n_total - n_val if n_train is None else int(n_train)
    if n_train < 1 or n_train + n_val > n_total:
        raise VaeAudioError(
            f"data.num_train={n_train} with num_val={n_val} exceeds the {n_total} images; "
            "lower num_train (or null for all)"
        )
    return perm[n_val : n_val + n_train], perm[:n_val]


def build_data(cfg: dict[str, Any]) -> ImageData:
    """Build the data sets of a (defaults-completed) ``data`` section."""
    c = with_data_defaults(cfg)
    name, seed = c["name"], int(c["seed"])
    n_train = None if c["num_train"] is None else int(c["num_train"])
    n_val = int(c["num_val"])
    common = dict(batch_size=int(c["batch_size"]), num_workers=int(c["num_workers"]))
    if name == "dsprites":
        gt = DSprites()
        train_idx, val_idx = _split(len(gt), n_train, n_val, seed)
        return ImageData(
            GroundTruthDataset(gt, train_idx),
            GroundTruthDataset(gt, val_idx),
            gt.observation_shape,
            0,
            gt,
            **common,
        )
    if name == "digits":
        train = AffineDigits(n_train or 10000, seed=seed, split="train")
        val = AffineDigits(n_val, seed=seed + 1, split="test")
        return ImageData(train, val, (1, 28, 28), 10, None, **common)
    if name in ("mnist", "fashion_mnist"):
        if not c["root"]:
            raise VaeAudioError(
                f"data.name={name} needs data.root=FOLDER with the IDX files (nothing is "
                "downloaded); or use data.name=digits"
            )
        train = IdxImages(c["root"], "train", bool(c["binarise"]))
        val = IdxImages(c["root"], "test", bool(c["binarise"]))
        if n_train is not None:
            train = Subset(train, range(min(n_train, len(train))))
        val = Subset(val, range(min(n_val, len(val))))
        return ImageData(train, val, (1, 28, 28), 10, None, **common)
    if name == "celeba":
        if not c["root"]:
            raise VaeAudioError(
                "data.name=celeba needs data.root=FOLDER of the aligned face images "
                "(e.g. img_align_celeba/); nothing is downloaded"
            )
        limit = None if n_train is None else n_train + n_val
        images = ImageFolder64(c["root"], limit=limit)
        train_idx, val_idx = _split(len(images), n_train, n_val, seed)
        return ImageData(
            Subset(images, train_idx.tolist()),
            Subset(images, val_idx.tolist()),
            (3, 64, 64),
            0,
            None,
            **common,
        )
    raise VaeAudioError(
        f"data.name={name!r} unknown; use dsprites, digits, mnist, fashion_mnist or celeba"
    )


def first_batch(dataset: Dataset, n: int) -> dict[str, torch.Tensor]:
    """The first ``n`` items of ``dataset`` collated into one batch dict."""
    items = [dataset[i] for i in range(min(n, len(dataset)))]
    return torch.utils.data.default_collate(items)
