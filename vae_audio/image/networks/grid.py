"""Convolutional encoder/decoder to and from a spatial code grid (the VQ-VAE's networks).

As in van den Oord et al. 2017 (Sec. 4.1), scaled down for CPU budgets: ``L`` stride-2 4×4
convolutions (each halves the side), a residual block (ReLU, 3×3 conv, ReLU, 1×1 conv), and a
1×1 convolution to ``D`` code channels; the decoder mirrors it with transposed convolutions.
A 64×64 image with ``L = 3`` gives an 8×8 grid, a 28×28 image with ``L = 2`` a 7×7 grid.
"""

from __future__ import annotations

from torch import Tensor, nn

from vae_audio.errors import VaeAudioError


def grid_side(image_size: int, downsample: int) -> int:
    """Side of the code grid; raises unless ``image_size`` is divisible by ``2^downsample``."""
    if downsample < 1 or image_size % 2**downsample:
        raise VaeAudioError(
            f"model.downsample={downsample}: the image side {image_size} must be divisible by "
            f"2^downsample (e.g. 3 for 64x64, 2 for 28x28)"
        )
    return image_size // 2**downsample


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class GridEncoder(nn.Module):
    """``x [B, C, H, W] -> z_e [B, D, H / 2^L, W / 2^L]``.

    Args:
        channels: image channels ``C``.
        code_dim: ``D``.
        hidden: convolution channels.
        downsample: ``L``, number of stride-2 convolutions.
    """

    def __init__(self, channels: int, code_dim: int, hidden: int = 32, downsample: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(downsample):
            layers.append(nn.Conv2d(c_in, hidden, 4, stride=2, padding=1))
            if i < downsample - 1:
                layers.append(nn.ReLU())
            c_in = hidden
        layers += [_Residual(hidden), nn.ReLU(), nn.Conv2d(hidden, code_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # [B, D, h, w]


class GridDecoder(nn.Module):
    """``z_q [B, D, h, w] -> logits [B, C, h 2^L, w 2^L]`` (mirror of :class:`GridEncoder`)."""

    def __init__(self, channels: int, code_dim: int, hidden: int = 32, downsample: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(code_dim, hidden, 3, padding=1), _Residual(hidden)]
        for i in range(downsample):
            c_out = channels if i == downsample - 1 else hidden
            layers += [nn.ReLU(), nn.ConvTranspose2d(hidden, c_out, 4, stride=2, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)  # [B, C, H, W]
