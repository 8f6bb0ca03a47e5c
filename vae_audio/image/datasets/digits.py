"""Digits with known affine factors, built offline from scikit-learn's bundled digits.

``sklearn.datasets.load_digits`` ships 1,797 handwritten digits (8×8, grey levels 0–16)
inside the package, so nothing is downloaded. Each digit is upsampled (bilinear) into a
20×20 box centred on a 28×28 canvas, like MNIST, then warped by a random affine transform
whose parameters are recorded per image:

``A = T(t_x, t_y) · R(θ) · Sh(s) · S(c)``, with rotation ``θ`` (radians, counter-clockwise),
horizontal shear ``s``, isotropic scale ``c`` and translation ``(t_x, t_y)`` in pixels,
applied about the image centre (:func:`affine_matrix`). The warp is done with
``torch.nn.functional.grid_sample`` (bilinear, zero padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from vae_audio.errors import VaeAudioError

IMAGE_SIZE = 28
_BOX = 20


@dataclass(frozen=True)
class AffineRanges:
    """Uniform ranges of the random affine factors (radians, unitless, pixels)."""

    rotation: float = np.pi / 4
    shear: float = 0.3
    scale: tuple[float, float] = (0.85, 1.1)
    translation: float = 2.0


def affine_matrix(
    rotation: np.ndarray, shear: np.ndarray, scale: np.ndarray, tx: np.ndarray, ty: np.ndarray
) -> np.ndarray:
    """Forward affine maps ``[B, 2, 3]`` in pixel units about the image centre.

    A point ``p`` (x right, y up, origin at the centre) of the upright digit moves to
    ``M[:, :2] p + M[:, 2]`` with ``M[:, :2] = R(θ) · [[1, s], [0, 1]] · c``.

    Args:
        rotation, shear, scale, tx, ty: ``[B]`` factors.
    """
    cos, sin = np.cos(rotation), np.sin(rotation)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # [B, 2, 2]
    shear_m = np.zeros_like(rot)
    shear_m[:, 0, 0] = shear_m[:, 1, 1] = 1.0
    shear_m[:, 0, 1] = shear
    linear = rot @ shear_m * np.asarray(scale)[:, None, None]  # [B, 2, 2]
    return np.concatenate([linear, np.stack([tx, ty], -1)[:, :, None]], axis=2)  # [B, 2, 3]


def warp(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Apply forward affine maps (pixel units, y up, centred) to images.

    Args:
        images: ``[B, 1, H, W]`` float.
        matrices: ``[B, 2, 3]`` forward maps from :func:`affine_matrix`.

    Returns:
        ``[B, 1, H, W]`` warped images (bilinear, zeros outside).
    """
    b, _, h, w = images.shape
    linear, shift = matrices[:, :, :2], matrices[:, :, 2]
    # Output pixel q samples the input at M⁻¹ (q − t). grid_sample's normalised coordinates
    # have y down; conjugate by flip = diag(1, −1) and rescale pixels to [-1, 1].
    inv = torch.linalg.inv(linear)  # [B, 2, 2]
    flip = torch.tensor([1.0, -1.0], dtype=images.dtype, device=images.device)
    inv = inv * flip[None, :, None] * flip[None, None, :]  # [B, 2, 2], y-down frame
    shift = shift * flip / torch.tensor([w / 2, h / 2], dtype=images.dtype, device=images.device)
    theta = torch.cat([inv, -(inv @ shift[:, :, None])], dim=2)  # [B, 2, 3]
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)  # [B, H, W, 2]
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def upright_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits as ``[N, 28, 28]`` float32 in ``[0, 1]`` and ``[N]`` labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]  # [N, 1, 8, 8]
    box = F.interpolate(small, size=(_BOX, _BOX), mode="bilinear", align_corners=False)
    pad = (IMAGE_SIZE - _BOX) // 2
    canvas = F.pad(box, (pad, pad, pad, pad))  # [N, 1, 28, 28]
    return canvas[:, 0].clamp(0.0, 1.0).numpy(), bunch.target.astype(np.int64)


class AffineDigits(Dataset):
    """Randomly warped digits with their affine factors.

    Item: ``{"x": [1, 28, 28], "label": int64, "factors": [5]}`` with factors
    ``(rotation, shear, scale, tx, ty)``; ``upright`` holds the unwarped source images.

    Args:
        num: number of images (digits are cycled, each copy gets fresh factors).
        seed: seed of the factor draw; the data set is a pure function of ``(num, seed)``.
        ranges: factor ranges.
        split: ``"train"`` uses the first 1,500 source digits, ``"test"`` the other 297.
    """

    factor_names = ("rotation", "shear", "scale", "tx", "ty")

    def __init__(
        self,
        num: int = 10000,
        seed: int = 0,
        ranges: AffineRanges | None = None,
        split: str = "train",
    ) -> None:
        if split not in ("train", "test", "all"):
            raise VaeAudioError(f"digits split {split!r} unknown; use train, test or all")
        if num < 1:
            raise VaeAudioError(f"digits num={num} must be a positive image count")
        r = ranges or AffineRanges()
        upright, labels = upright_digits()
        part = {"train": slice(0, 1500), "test": slice(1500, None), "all": slice(None)}[split]
        upright, labels = upright[part], labels[part]
        rs = np.random.RandomState(seed)
        source = np.arange(num) % len(upright)
        factors = np.stack(
            [
                rs.uniform(-r.rotation, r.rotation, num),
                rs.uniform(-r.shear, r.shear, num),
                rs.uniform(r.scale[0], r.scale[1], num),
                rs.uniform(-r.translation, r.translation, num),
                rs.uniform(-r.translation, r.translation, num),
            ],
            axis=1,
        )
        self.upright = torch.from_numpy(upright[source])[:, None]  # [N, 1, 28, 28]
        self.labels = torch.from_numpy(labels[source])
        self.factors = torch.from_numpy(factors.astype(np.float32))  # [N, 5]
        matrices = torch.from_numpy(affine_matrix(*factors.T).astype(np.float32))  # [N, 2, 3]
        self.images = torch.cat(
            [warp(self.upright[i : i + 1024], matrices[i : i + 1024]) for i in range(0, num, 1024)]
        ).clamp(0.0, 1.0)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.images[i], "label": self.labels[i], "factors": self.factors[i]}
