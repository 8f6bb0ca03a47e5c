"""Loaders for image corpora the user already has on disk (nothing is downloaded).

- MNIST / Fashion-MNIST: the four IDX files as distributed (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-…``), gzipped (``.gz``) or not, in one folder.
  IDX format: big-endian magic ``0x00000803`` (images) / ``0x00000801`` (labels), then the
  dimension sizes as big-endian int32, then uint8 data.
- CelebA: a folder of ``.jpg`` files (e.g. ``img_align_celeba/``), centre-cropped to a
  square of side ``crop`` (148 px, the usual choice for the aligned 178×218 images) and
  resized to 64×64 RGB.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vae_audio.errors import VaeAudioError

_IDX_DTYPES = {0x08: np.uint8}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a uint8 array of its stored shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise VaeAudioError(f"cannot read IDX file {path} ({err}); re-copy the file") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise VaeAudioError(
            f"{path} is not an unsigned-byte IDX file (bad magic number); point at the "
            "original MNIST/Fashion-MNIST files"
        )
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4).astype(np.int64)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise VaeAudioError(
            f"{path} is truncated: header says {dims.tolist()} but {data.size} bytes follow; "
            "re-copy the file"
        )
    return data.reshape(dims)


def _find_idx(root: Path, stem: str) -> Path:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (root / name).is_file():
            return root / name
    raise VaeAudioError(
        f"{root} has no {stem}[.gz]; point the data root at the folder holding the MNIST or "
        "Fashion-MNIST IDX files"
    )


class IdxImages(Dataset):
    """MNIST-format folder: item ``{"x": [1, 28, 28] float in [0, 1], "label": int64}``.

    Args:
        root: folder with the IDX files.
        split: ``"train"`` (60k) or ``"test"`` (10k).
        binarise: threshold at 0.5 (for a Bernoulli likelihood on binary data).
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", binarise: bool = False):
        root = Path(root).expanduser()
        if not root.is_dir():
            raise VaeAudioError(f"data root {root} is not a folder; pass the IDX files' folder")
        prefix = {"train": "train", "test": "t10k"}.get(split)
        if prefix is None:
            raise VaeAudioError(f"split {split!r} unknown; use train or test")
        images = read_idx(_find_idx(root, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find_idx(root, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise VaeAudioError(
                f"{root}: images {images.shape} and labels {labels.shape} do not match; "
                "use the image and label files of the same split"
            )
        x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]  # [N, 1, 28, 28]
        self.images = (x > 0.5).float() if binarise else x
        self.labels = torch.from_numpy(labels.astype(np.int64))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.images[i], "label": self.labels[i]}


class ImageFolder64(Dataset):
    """A folder of JPEG/PNG faces (CelebA), centre-cropped and resized: ``{"x": [3, size, size]}``.

    Args:
        root: folder with the images (searched non-recursively).
        crop: side of the centre square crop in source pixels (clipped to the image).
        size: output side.
        limit: use only the first ``limit`` files (sorted by name), e.g. for a quick run.
    """

    extensions = (".jpg", ".jpeg", ".png")

    def __init__(
        self, root: str | os.PathLike, crop: int = 148, size: int = 64, limit: int | None = None
    ):
        root = Path(root).expanduser()
        if not root.is_dir():
            raise VaeAudioError(f"image root {root} is not a folder; pass the CelebA image folder")
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in self.extensions)
        if not files:
            raise VaeAudioError(
                f"{root} holds no .jpg/.png files; point at the folder of images "
                "(e.g. img_align_celeba/)"
            )
        self.files = files[:limit] if limit else files
        self.crop, self.size = int(crop), int(size)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from PIL import Image

        try:
            with Image.open(self.files[i]) as img:
                img = img.convert("RGB")
                w, h = img.size
                side = min(self.crop, w, h)
                left, top = (w - side) // 2, (h - side) // 2
                img = img.crop((left, top, left + side, top + side))
                img = img.resize((self.size, self.size), Image.BILINEAR)
                arr = np.asarray(img, dtype=np.float32) / 255.0  # [H, W, 3]
        except OSError as err:
            raise VaeAudioError(
                f"cannot decode image {self.files[i]} ({err}); remove or replace the file"
            ) from None
        return {"x": torch.from_numpy(arr).permute(2, 0, 1).contiguous()}  # [3, H, W]
