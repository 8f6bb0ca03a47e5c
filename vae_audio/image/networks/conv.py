"""Convolutional encoders and decoders for 64×64 and 28×28 images.

64×64 follows Burgess et al. 2018 (Appendix A.1), the β-VAE architecture also used by
disentanglement_lib: four 4×4 stride-2 convolutions with 32 channels (64→32→16→8→4), two
fully connected layers of 256 units, then the posterior parameters; the decoder mirrors it
with transposed convolutions. 28×28 uses two convolutions (32, 64 channels; 28→14→7) and
one 256-unit layer. ReLU everywhere.

A label condition (one-hot ``[B, C]``, conditional VAE) is concatenated to the flattened
features before the fully connected layers of the encoder and to ``z`` in the decoder.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vae_audio.core.distributions import DiagonalGaussian
from vae_audio.errors import VaeAudioError

# image size -> (conv channels, fully connected widths)
_SPECS = {64: ((32, 32, 32, 32), (256, 256)), 28: ((32, 64), (256,))}


def _spec(image_size: int):
    if image_size not in _SPECS:
        raise VaeAudioError(
            f"conv networks support image sizes {sorted(_SPECS)}, got {image_size}; "
            "use an mlp network or resize the images"
        )
    return _SPECS[image_size]


def _mlp(widths: list[int], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """``x [B, C, H, W] (, condition [B, K]) -> q(z | x) with [B, D] parameters``."""

    def __init__(
        self, image_size: int, channels: int, latent_dim: int, condition_dim: int = 0
    ) -> None:
        super().__init__()
        conv_ch, fc = _spec(image_size)
        layers: list[nn.Module] = []
        for c_in, c_out in zip((channels, *conv_ch[:-1]), conv_ch, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        self.conv = nn.Sequential(*layers)
        side = image_size // 2 ** len(conv_ch)
        self.flat = conv_ch[-1] * side * side
        self.fc = _mlp([self.flat + condition_dim, *fc], last_activation=True)
        self.head = nn.Linear(fc[-1], 2 * latent_dim)

    def forward(self, x: Tensor, condition: Tensor | None = None) -> DiagonalGaussian:
        h = self.conv(x).flatten(1)  # [B, C', h, w] -> [B, C' h w]
        if condition is not None:
            h = torch.cat([h, condition.to(h.dtype)], dim=1)  # [B, C' h w + K]
        mean, logvar = self.head(self.fc(h)).chunk(2, dim=1)  # [B, 2D] -> 2 × [B, D]
        return DiagonalGaussian(mean, logvar)


class ConvDecoder(nn.Module):
    """``z [B, D] (, condition [B, K]) -> logits / means [B, C, H, W]``."""

    def __init__(
        self, image_size: int, channels: int, latent_dim: int, condition_dim: int = 0
    ) -> None:
        super().__init__()
        conv_ch, fc = _spec(image_size)
        self.side = image_size // 2 ** len(conv_ch)
        self.top = conv_ch[-1]
        self.fc = _mlp(
            [latent_dim + condition_dim, *fc[::-1], self.top * self.side**2], last_activation=True
        )
        layers: list[nn.Module] = []
        outs = (*conv_ch[::-1][1:], channels)
        for i, (c_in, c_out) in enumerate(zip(conv_ch[::-1], outs, strict=True)):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(outs) - 1:
                layers.append(nn.ReLU())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        if condition is not None:
            z = torch.cat([z, condition.to(z.dtype)], dim=1)  # [B, D + K]
        h = self.fc(z).unflatten(1, (self.top, self.side, self.side))  # [B, C', h, w]
        return self.deconv(h)  # [B, C, H, W]
