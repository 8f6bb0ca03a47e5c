"""Offline image data: procedural dSprites, affine digits, local MNIST-format and CelebA folders."""

from vae_audio.image.datasets.digits import AffineDigits, AffineRanges, affine_matrix, warp
from vae_audio.image.datasets.dsprites import DSprites, rasterise
from vae_audio.image.datasets.ground_truth import (
    FactorGrid,
    GroundTruthData,
    GroundTruthDataset,
    collate_batch,
)
from vae_audio.image.datasets.local import IdxImages, ImageFolder64, read_idx

__all__ = [
    "AffineDigits",
    "AffineRanges",
    "DSprites",
    "FactorGrid",
    "GroundTruthData",
    "GroundTruthDataset",
    "IdxImages",
    "ImageFolder64",
    "affine_matrix",
    "collate_batch",
    "rasterise",
    "read_idx",
    "warp",
]
