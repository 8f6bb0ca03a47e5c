"""Discriminator of the VAE-GAN: a real/fake logit and the intermediate features ``Dis_l(x)``.

Larsen et al. 2016 (Sec. 2.2, Appendix) measure reconstructions in the feature space of an
intermediate discriminator layer ``l`` (their third of four convolutions), low enough to keep
the image's layout and high enough to be invariant to what a pixel loss over-penalises.
Here ``Dis_l`` is:

- ``conv``: the output of the convolutions (4×4, stride 2, ``channels`` maps, halving the
  side down to 8×8 or an odd side: 64→32→16→8, 28→14→7), flattened ``[B, channels h w]``;
- ``mlp``: the first fully connected layer, ``[B, hidden[0]]``.

The remaining fully connected layers (``hidden`` for conv, ``hidden[1:]`` for mlp) lead to
the logit. LeakyReLU(0.2) everywhere, no normalisation layers (the same function in train and
eval mode).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from vae_audio.errors import VaeAudioError


class Discriminator(nn.Module):
    """``x [B, C, H, W] -> (logit [B], features Dis_l(x) [B, F])``.

    Args:
        image_shape: ``(C, H, W)``.
        network: ``mlp`` or ``conv``.
        hidden: fully connected widths (for ``mlp`` the first one is the feature layer).
        channels: convolution channels (``conv``).
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        network: str = "mlp",
        hidden: Sequence[int] = (512, 256),
        channels: int = 32,
    ) -> None:
        super().__init__()
        c, h, w = (int(s) for s in image_shape)
        hidden = [int(n) for n in hidden]
        low: list[nn.Module] = []
        if network == "conv":
            side, c_in = min(h, w), c
            while side > 8 and side % 2 == 0:
                low += [nn.Conv2d(c_in, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
                side, c_in, h, w = side // 2, channels, h // 2, w // 2
            low.append(nn.Flatten())
            width = channels * h * w
        elif network == "mlp":
            if not hidden:
                raise VaeAudioError("model.discriminator_hidden needs at least one width for mlp")
            low += [nn.Flatten(), nn.Linear(math.prod((c, h, w)), hidden[0]), nn.LeakyReLU(0.2)]
            width, hidden = hidden[0], hidden[1:]
        else:
            raise VaeAudioError(f"discriminator network {network!r} unknown; use conv or mlp")
        self.features = nn.Sequential(*low)  # x -> Dis_l(x)
        high: list[nn.Module] = []
        for out in hidden:
            high += [nn.Linear(width, out), nn.LeakyReLU(0.2)]
            width = out
        high.append(nn.Linear(width, 1))
        self.head = nn.Sequential(*high)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.features(x)  # [B, F]
        return self.head(feats)[:, 0], feats  # [B], [B, F]
