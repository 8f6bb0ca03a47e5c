"""A small classifier of ground-truth factors whose hidden layer embeds images for the
sample-quality scores (:mod:`vae_audio.image.metrics.sample_quality`).

The Fréchet distance and precision/recall need a feature space where distances mean
something about the data; FID uses an ImageNet Inception network (Heusel et al. 2017). Here
no network is downloaded: a small convolutional net is trained on the data set's own
ground-truth factors (dSprites: shape, scale, orientation, position; digits: the class and
the warp), one softmax head per (binned) factor, and its last hidden layer (``F`` units, ReLU)
is the feature space. Two 4×4 stride-2 convolutions (32, 64 channels), one more for 64×64
inputs, then ``F`` fully connected units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FactorClassifier(nn.Module):
    """``x [B, C, H, W] -> features [B, F]`` and one logit head per factor.

    Args:
        image_shape: ``(C, H, W)`` with ``H = W`` in {28, 64} (any even side works).
        num_values: classes of each factor head, e.g. ``[3, 6, 8, 8, 8]``.
        feature_dim: ``F``.
    """

    def __init__(
        self, image_shape: Sequence[int], num_values: Sequence[int], feature_dim: int = 64
    ) -> None:
        super().__init__()
        c, h, w = (int(s) for s in image_shape)
        chans = (32, 64, 64) if h >= 64 else (32, 64)
        layers: list[nn.Module] = []
        for c_in, c_out in zip((c, *chans[:-1]), chans, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
            h, w = h // 2, w // 2
        self.trunk = nn.Sequential(
            *layers, nn.Flatten(), nn.Linear(chans[-1] * h * w, feature_dim), nn.ReLU()
        )
        self.heads = nn.ModuleList(nn.Linear(feature_dim, int(n)) for n in num_values)

    def features(self, x: Tensor) -> Tensor:
        return self.trunk(x)  # [B, F]

    def forward(self, x: Tensor) -> list[Tensor]:
        h = self.features(x)
        return [head(h) for head in self.heads]  # each [B, n_k]


@dataclass
class FeatureNetFit:
    """The trained classifier and its held-out accuracy per factor (fractions)."""

    model: FactorClassifier
    accuracy: dict[str, float]


def fit_factor_classifier(
    images: Tensor,
    targets: Tensor,
    num_values: Sequence[int],
    factor_names: Sequence[str],
    steps: int = 600,
    batch_size: int = 64,
    lr: float = 2e-3,
    feature_dim: int = 64,
    holdout: int = 500,
    seed: int = 0,
) -> FeatureNetFit:
    """Train a :class:`FactorClassifier` on ``images [N, C, H, W]`` and int ``targets [N, K]``.

    The loss is the sum over factors of the cross-entropy, mean over the batch; the last
    ``holdout`` images are kept out of training and give the reported accuracies.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = FactorClassifier(images.shape[1:], num_values, feature_dim)
    train_x, train_y = images[:-holdout], targets[:-holdout]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(train_x), (batch_size,), generator=gen)
        logits = model(train_x[idx])
        loss = sum(F.cross_entropy(lg, train_y[idx, k]) for k, lg in enumerate(logits))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        logits = model(images[-holdout:])
    acc = {
        name: float((lg.argmax(1) == targets[-holdout:, k]).float().mean())
        for k, (name, lg) in enumerate(zip(factor_names, logits, strict=True))
    }
    return FeatureNetFit(model, acc)


@torch.no_grad()
def embed(model: FactorClassifier, images: Tensor, batch_size: int = 500) -> Tensor:
    """Features ``[N, F]`` of ``images [N, C, H, W]`` (CPU, eval mode)."""
    model.eval()
    return torch.cat(
        [
            model.features(images[i : i + batch_size].float())
            for i in range(0, len(images), batch_size)
        ]
    )
