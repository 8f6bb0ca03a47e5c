"""Sample quality of trained image models on the data sets with ground-truth factors.

A :class:`Reference` holds, for one data set (``dsprites`` or ``digits``), held-out real
images, a :class:`~vae_audio.image.feature_net.FactorClassifier` trained here on the data
set's factors, and the real images' features. :func:`score_model` then measures a model:

- ``fd``: Fréchet distance between the features of ``n`` samples and of the real images
  (squared feature units; :func:`~vae_audio.image.metrics.frechet_distance`);
- ``precision`` / ``recall``: k-NN manifold precision and recall in the same features
  (Kynkäänniemi et al. 2019);
- ``recon_mse``: mean squared error per pixel between the real images and their
  reconstructions (intensities in ``[0, 1]``);
- ``cluster_accuracy`` (models with a mixture prior: its most likely component; other models
  with a Gaussian encoder: k-means with ``K`` clusters on the posterior means, a post-hoc
  baseline) against the dSprites shape or the digit class, Hungarian-matched.

:meth:`Reference.floor` scores a second, independent real set the same way: the values a
perfect sampler would get at this sample size.

Factor targets of the classifier (one softmax head each): dSprites shape (3), scale (6),
orientation (40 values in 8 bins), position x and y (32 values in 8 bins each); digits class
(10) and rotation, shear, scale, shift x, shift y (each in 5 equal bins over its range).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vae_audio.errors import VaeAudioError
from vae_audio.image.datasets import AffineDigits, AffineRanges, DSprites
from vae_audio.image.feature_net import FactorClassifier, embed, fit_factor_classifier
from vae_audio.image.metrics import clustering_accuracy, frechet_distance, precision_recall

DATASETS = ("dsprites", "digits")
_DIGIT_BINS = 5


@dataclass
class LabelledImages:
    """Images ``[N, C, H, W]`` in ``[0, 1]``, classifier targets ``[N, K]`` and the cluster
    truth ``[N]`` (dSprites shape, digit class)."""

    images: Tensor
    targets: Tensor
    truth: Tensor


def _digit_targets(d: AffineDigits) -> Tensor:
    r = AffineRanges()
    lows = torch.tensor([-r.rotation, -r.shear, r.scale[0], -r.translation, -r.translation])
    highs = torch.tensor([r.rotation, r.shear, r.scale[1], r.translation, r.translation])
    bins = ((d.factors - lows) / (highs - lows) * _DIGIT_BINS).long().clamp(0, _DIGIT_BINS - 1)
    return torch.cat([d.labels[:, None], bins], dim=1)  # [N, 6]


def labelled_images(name: str, num: int, seed: int, split: str = "train") -> LabelledImages:
    """``num`` images of data set ``name`` with factor targets, drawn with ``seed``.

    dSprites images are random points of the full factor grid; digits use the ``split``
    (``train`` or ``test``) source digits with fresh random warps.
    """
    if name == "dsprites":
        factors, x = DSprites().sample(num, np.random.RandomState(seed))  # [N, 5], [N, 1, 64, 64]
        f = torch.from_numpy(factors)
        targets = torch.stack([f[:, 0], f[:, 1], f[:, 2] // 5, f[:, 3] // 4, f[:, 4] // 4], 1)
        return LabelledImages(torch.from_numpy(x), targets, f[:, 0])
    if name == "digits":
        d = AffineDigits(num, seed=seed, split=split)
        return LabelledImages(d.images, _digit_targets(d), d.labels)
    raise VaeAudioError(f"sample-quality data set {name!r} unknown; use one of {DATASETS}")


def factor_heads(name: str) -> tuple[list[int], list[str]]:
    """``(num_values, names)`` of the classifier heads of data set ``name``."""
    if name == "dsprites":
        return [3, 6, 8, 8, 8], ["shape", "scale", "orientation", "pos_x", "pos_y"]
    return [10] + [_DIGIT_BINS] * 5, ["class", "rotation", "shear", "scale", "shift_x", "shift_y"]


@dataclass
class Reference:
    """Held-out real images of one data set, the feature classifier and the real features."""

    name: str
    real: LabelledImages
    classifier: FactorClassifier
    features: Tensor  # [N, F]
    accuracy: dict[str, float]  # classifier accuracy per factor on held-out images
    k: int = 3

    @property
    def num_clusters(self) -> int:
        return 3 if self.name == "dsprites" else 10

    def scores(self, images: Tensor) -> dict[str, float]:
        """FD, precision and recall of ``images [n, C, H, W]`` against the real features."""
        feats = embed(self.classifier, images)
        pr = precision_recall(self.features, feats, self.k)
        return {
            "fd": frechet_distance(self.features, feats),
            "precision": pr.precision,
            "recall": pr.recall,
        }

    def floor(self, num: int, seed: int) -> dict[str, float]:
        """Scores of an independent real set of ``num`` images (what perfect samples get)."""
        split = "test" if self.name == "digits" else "train"
        return self.scores(labelled_images(self.name, num, seed, split).images)


def build_reference(
    name: str,
    num_eval: int = 1000,
    seed: int = 0,
    num_train: int = 10000,
    steps: int = 600,
    k: int = 3,
) -> Reference:
    """Train the factor classifier on ``num_train`` images and embed ``num_eval`` real ones.

    The real evaluation images are held out from the models' training sets where the data
    set has a split (digits: the ``test`` source digits); dSprites draws them afresh from
    the factor grid.
    """
    train = labelled_images(name, num_train, seed + 101)
    num_values, names = factor_heads(name)
    fit = fit_factor_classifier(
        train.images, train.targets, num_values, names, steps=steps, seed=seed
    )
    real = labelled_images(name, num_eval, seed + 202, "test" if name == "digits" else "train")
    return Reference(name, real, fit.model, embed(fit.model, real.images), fit.accuracy, k)


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def sample_images(model, n: int, seed: int, batch: int = 250) -> Tensor:
    """``n`` samples ``[n, C, H, W]`` on the CPU: ``model.sample`` if the model has its own
    prior, else ``z ~ N(0, I)`` decoded with ``model.generate``."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch):
        m = min(batch, n - start)
        if hasattr(model, "sample"):
            out.append(model.sample(m, gen).cpu())
        else:
            z = torch.randn(m, model.latent_dim, generator=gen).to(_device(model))
            out.append(model.generate(z).cpu())
    return torch.cat(out).clamp(0.0, 1.0)


@torch.no_grad()
def reconstruction_mse(model, images: Tensor, batch: int = 250) -> float:
    """Mean squared error per pixel between ``images`` and their reconstructions."""
    total = 0.0
    for start in range(0, len(images), batch):
        x = images[start : start + batch].to(_device(model))
        total += float((model.reconstruct(x) - x).pow(2).sum())
    return total / images.numel()


@torch.no_grad()
def cluster_accuracy(model, images: Tensor, truth: Tensor, k: int, seed: int = 0) -> float | None:
    """Hungarian-matched clustering accuracy (``None`` for models without a Gaussian encoder).

    A model with ``cluster`` (mixture prior) uses it; otherwise k-means (``k`` clusters,
    scikit-learn) on the posterior means.
    """
    device = _device(model)
    if hasattr(model, "cluster"):
        assigned = torch.cat(
            [
                model.cluster(images[i : i + 250].to(device)).cpu()
                for i in range(0, len(images), 250)
            ]
        )
        return clustering_accuracy(
            assigned.numpy(), truth.numpy(), model.prior.num_components
        ).accuracy
    if not hasattr(model, "encode"):
        return None
    from sklearn.cluster import KMeans

    means = torch.cat(
        [
            model.encode(images[i : i + 250].to(device)).mean.cpu()
            for i in range(0, len(images), 250)
        ]
    )
    labels = KMeans(k, n_init=10, random_state=seed).fit_predict(means.double().numpy())
    return clustering_accuracy(labels, truth.numpy(), k).accuracy


def score_model(model, reference: Reference, n: int, seed: int) -> tuple[dict, Tensor]:
    """All scores of ``model`` (eval mode) against ``reference``; also returns the samples."""
    model.eval()
    samples = sample_images(model, n, seed)
    scores = reference.scores(samples)
    scores["recon_mse"] = reconstruction_mse(model, reference.real.images)
    scores["cluster_accuracy"] = cluster_accuracy(
        model, reference.real.images, reference.real.truth, reference.num_clusters, seed
    )
    return scores, samples
