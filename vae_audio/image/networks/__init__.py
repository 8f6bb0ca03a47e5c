"""Encoders and decoders of the image VAEs."""

from vae_audio.image.networks.affine import (
    AFFINE_DIM,
    CoordinateDecoder,
    affine_coordinates,
    pixel_grid,
)
from vae_audio.image.networks.conv import ConvDecoder, ConvEncoder
from vae_audio.image.networks.mlp import MLPDecoder, MLPEncoder

__all__ = [
    "AFFINE_DIM",
    "ConvDecoder",
    "ConvEncoder",
    "CoordinateDecoder",
    "MLPDecoder",
    "MLPEncoder",
    "affine_coordinates",
    "pixel_grid",
]
