"""Fully connected encoders and decoders (fast CPU variants, any image shape).

Hidden layers use ReLU; the encoder's last layer outputs ``2 D`` posterior parameters. A
label condition (one-hot ``[B, K]``) is concatenated to the input (encoder) or to ``z``
(decoder). The label-only encoder of JMVAE is an :class:`MLPEncoder` with input shape ``(K,)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vae_audio.core.distributions import DiagonalGaussian


def _stack(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """``x [B, *shape] (, condition [B, K]) -> q(z | x) with [B, D] parameters``."""

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int,
        hidden: Sequence[int] = (512, 256),
        condition_dim: int = 0,
    ) -> None:
        super().__init__()
        self.net = _stack([math.prod(input_shape) + condition_dim, *hidden, 2 * latent_dim])

    def forward(self, x: Tensor, condition: Tensor | None = None) -> DiagonalGaussian:
        h = x.flatten(1)  # [B, *shape] -> [B, prod(shape)]
        if condition is not None:
            h = torch.cat([h, condition.to(h.dtype)], dim=1)  # [B, prod(shape) + K]
        mean, logvar = self.net(h).chunk(2, dim=1)  # [B, 2D] -> 2 × [B, D]
        return DiagonalGaussian(mean, logvar)


class MLPDecoder(nn.Module):
    """``z [B, D] (, condition [B, K]) -> [B, *output_shape]`` (logits or means)."""

    def __init__(
        self,
        output_shape: Sequence[int],
        latent_dim: int,
        hidden: Sequence[int] = (256, 512),
        condition_dim: int = 0,
    ) -> None:
        super().__init__()
        self.output_shape = tuple(output_shape)
        self.net = _stack([latent_dim + condition_dim, *hidden, math.prod(output_shape)])

    def forward(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        if condition is not None:
            z = torch.cat([z, condition.to(z.dtype)], dim=1)  # [B, D + K]
        return self.net(z).unflatten(1, self.output_shape)  # [B, prod] -> [B, *output_shape]
