"""Coordinate-MLP decoder with an affine transform of the pixel grid.

The decoder is a function of a pixel coordinate and a content code,
``logit(u, z_c) = f_θ([u, z_c])``, evaluated on the grid of pixel centres ``u ∈ [−1, 1]²``
(as in spatial-VAE, Bepler et al. 2019). Six further latent dimensions ``a ∈ R⁶`` form a
2×3 matrix ``A`` and move the grid before it is read:

``u' = ([I | 0] + 0.1 · A) [u; 1]``  (homogeneous coordinates, ``[2, 3] @ [3]``),

so rotation, shear, scale and translation of the digit are explained by ``a`` and the
content code ``z_c`` can stay pose-free. Setting ``A = 0`` renders the canonical (normalised)
image. The 0.1 factor keeps a standard-normal ``a`` within moderate deformations.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vae_audio.errors import VaeAudioError

AFFINE_DIM = 6
AFFINE_SCALE = 0.1


def pixel_grid(height: int, width: int, dtype=None, device=None) -> Tensor:
    """Pixel-centre coordinates ``[H W, 2]`` in ``[−1, 1]²``, (x right, y up), row-major."""
    ys = 1.0 - (2.0 * torch.arange(height, dtype=dtype, device=device) + 1.0) / height  # [H]
    xs = (2.0 * torch.arange(width, dtype=dtype, device=device) + 1.0) / width - 1.0  # [W]
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # [H, W] each
    return torch.stack([gx, gy], dim=-1).reshape(-1, 2)  # [H W, 2]


def affine_coordinates(grid: Tensor, affine: Tensor) -> Tensor:
    """Move a coordinate grid by ``[I | 0] + 0.1 · A``.

    Args:
        grid: ``[P, 2]`` coordinates (P pixels).
        affine: ``[B, 6]`` latent values, read row-major as ``A [B, 2, 3]``.

    Returns:
        ``[B, P, 2]`` transformed coordinates.
    """
    eye = torch.eye(2, 3, dtype=affine.dtype, device=affine.device)  # [2, 3]
    t = eye + AFFINE_SCALE * affine.reshape(-1, 2, 3)  # [B, 2, 3]
    homog = torch.cat([grid, torch.ones_like(grid[:, :1])], dim=1)  # [P, 3]
    return torch.einsum("bij,pj->bpi", t, homog)  # [B, 2, 3] x [P, 3] -> [B, P, 2]


class CoordinateDecoder(nn.Module):
    """``z [B, 6 + D_c] -> logits [B, 1, H, W]``: the first 6 dims are the affine code.

    Args:
        image_size: output side (square images).
        content_dim: ``D_c``, dimensions of the content code.
        hidden: widths of the coordinate MLP.
        activation: ``tanh`` (as in spatial-VAE) or ``relu`` (learns faster on CPU budgets).
    """

    def __init__(
        self,
        image_size: int,
        content_dim: int,
        hidden: Sequence[int] = (256, 256, 256),
        activation: str = "tanh",
    ):
        super().__init__()
        acts = {"tanh": nn.Tanh, "relu": nn.ReLU}
        if activation not in acts:
            raise VaeAudioError(f"coordinate decoder activation {activation!r}: use tanh or relu")
        self.image_size = image_size
        self.content_dim = content_dim
        width = hidden[0]
        # First layer split in two: coordinates (per pixel) + content (per image), summed.
        self.coord_in = nn.Linear(2, width)
        self.content_in = nn.Linear(content_dim, width, bias=False)
        layers: list[nn.Module] = []
        for a, b in zip(hidden[:-1], hidden[1:], strict=True):
            layers += [acts[activation](), nn.Linear(a, b)]
        layers += [acts[activation](), nn.Linear(hidden[-1], 1)]
        self.body = nn.Sequential(*layers)
        self.register_buffer("grid", pixel_grid(image_size, image_size), persistent=False)

    def forward(self, z: Tensor, transform: bool = True) -> Tensor:
        affine, content = z[:, :AFFINE_DIM], z[:, AFFINE_DIM:]  # [B, 6], [B, D_c]
        if not transform:
            affine = torch.zeros_like(affine)
        coords = affine_coordinates(self.grid.to(z.dtype), affine)  # [B, P, 2]
        h = self.coord_in(coords) + self.content_in(content)[:, None, :]  # [B, P, width]
        logits = self.body(h)  # [B, P, 1]
        return logits.reshape(-1, 1, self.image_size, self.image_size)  # [B, 1, H, W]
