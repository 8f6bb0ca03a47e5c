"""Image moments: centroid and principal-axis angle of grey-level images.

For intensities ``I(x, y) ≥ 0`` (x right, y up, pixel units, origin at the image centre):
centroid ``μ = Σ I p / Σ I``, central second moments ``μ20, μ02, μ11``, and principal-axis
angle ``φ = ½ atan2(2 μ11, μ20 − μ02)`` (radians, counter-clockwise from the x axis, in
``(−π/2, π/2]``). Used to measure how much rotation/shear a set of digits still carries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Moments:
    """Per-image moments, each ``[B]``: centroid (px) and principal-axis angle (rad)."""

    cx: Tensor
    cy: Tensor
    angle: Tensor
    elongation: Tensor  # (λ1 − λ2) / (λ1 + λ2) of the second-moment matrix, in [0, 1]


def image_moments(images: Tensor, eps: float = 1e-8) -> Moments:
    """Moments of ``[B, 1, H, W]`` (or ``[B, H, W]``) non-negative images."""
    x = images.reshape(-1, images.shape[-2], images.shape[-1]).clamp_min(0.0)  # [B, H, W]
    _, h, w = x.shape
    xs = torch.arange(w, dtype=x.dtype, device=x.device) - (w - 1) / 2  # [W], right
    ys = (h - 1) / 2 - torch.arange(h, dtype=x.dtype, device=x.device)  # [H], up
    mass = x.sum((1, 2)) + eps  # [B]
    cx = (x * xs[None, None, :]).sum((1, 2)) / mass
    cy = (x * ys[None, :, None]).sum((1, 2)) / mass
    dx = xs[None, None, :] - cx[:, None, None]  # [B, 1, W]
    dy = ys[None, :, None] - cy[:, None, None]  # [B, H, 1]
    m20 = (x * dx * dx).sum((1, 2)) / mass
    m02 = (x * dy * dy).sum((1, 2)) / mass
    m11 = (x * dx * dy).sum((1, 2)) / mass
    angle = 0.5 * torch.atan2(2.0 * m11, m20 - m02)
    spread = torch.sqrt((m20 - m02) ** 2 + 4.0 * m11**2)
    return Moments(cx, cy, angle, spread / (m20 + m02 + eps))


def axial_std(angles: Tensor) -> float:
    """Circular standard deviation of axial angles (period π), in radians.

    Angles of an axis are defined modulo π; doubling maps them to the circle, where the
    circular std is ``sqrt(−2 ln R)`` (Mardia & Jupp 2000, Eq. (2.3.11)); halve it back.
    """
    doubled = 2.0 * angles.double()
    r = torch.sqrt(torch.cos(doubled).mean() ** 2 + torch.sin(doubled).mean() ** 2)
    return 0.5 * math.sqrt(max(-2.0 * math.log(max(float(r), 1e-12)), 0.0))
