"""Encoders, decoders, discriminator and code prior of the image models."""

from vae_audio.image.networks.affine import (
    AFFINE_DIM,
    CoordinateDecoder,
    affine_coordinates,
    pixel_grid,
)
from vae_audio.image.networks.code_prior import CodePrior
from vae_audio.image.networks.conv import ConvDecoder, ConvEncoder
from vae_audio.image.networks.discriminator import Discriminator
from vae_audio.image.networks.grid import GridDecoder, GridEncoder, grid_side
from vae_audio.image.networks.mlp import MLPDecoder, MLPEncoder

__all__ = [
    "AFFINE_DIM",
    "CodePrior",
    "ConvDecoder",
    "ConvEncoder",
    "CoordinateDecoder",
    "Discriminator",
    "GridDecoder",
    "GridEncoder",
    "MLPDecoder",
    "MLPEncoder",
    "affine_coordinates",
    "grid_side",
    "pixel_grid",
]
