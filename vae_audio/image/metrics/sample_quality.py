"""Sample-quality scores in a feature space: Fréchet distance, k-NN precision and recall.

- :func:`frechet_distance`: the Fréchet (2-Wasserstein) distance between Gaussians fitted to
  two feature sets (Dowson & Landau 1982; the FID of Heusel et al. 2017, Eq. (6)):
  ``d² = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½)``, in squared feature units.
  ``(Σ₁^½ Σ₂ Σ₁^½)^½`` is symmetric PSD, so its trace is the sum of the square roots of its
  eigenvalues (no non-symmetric matrix square root).
- :func:`precision_recall`: improved precision and recall (Kynkäänniemi et al. 2019,
  Eqs. (1)–(2)): a set's manifold is the union of balls around its points, each with the
  radius of the distance to its k-th nearest neighbour in the set. Precision is the fraction
  of generated points inside the real manifold (are samples realistic?), recall the fraction
  of real points inside the generated manifold (is the data covered?).

Features are ``[N, F]`` arrays or tensors; the arithmetic is float64.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from vae_audio.errors import VaeAudioError
from vae_audio.separation.linalg import hermitian, sqrtm_psd


def _features(x, name: str) -> Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).double().cpu()
    if t.dim() != 2 or t.shape[0] < 2:
        raise VaeAudioError(f"{name} features must be [N, F] with N >= 2, got {tuple(t.shape)}")
    return t


def gaussian_moments(features) -> tuple[Tensor, Tensor]:
    """``(mean [F], covariance [F, F])`` of ``[N, F]`` features (unbiased, float64)."""
    x = _features(features, "the")
    mean = x.mean(0)
    centred = x - mean  # [N, F]
    return mean, centred.T @ centred / (x.shape[0] - 1)  # [F, F]


def gaussian_frechet_distance(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """``‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½)`` for ``μ [F]``, ``Σ [F, F]`` (≥ 0)."""
    mu1, mu2, cov1, cov2 = (torch.as_tensor(t).double() for t in (mu1, mu2, cov1, cov2))
    root1 = sqrtm_psd(hermitian(cov1))  # Σ₁^½ [F, F]
    inner = hermitian(root1 @ cov2 @ root1)  # [F, F]
    trace_root = torch.linalg.eigvalsh(inner).clamp_min(0.0).sqrt().sum()
    d2 = (mu1 - mu2).pow(2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2.0 * trace_root
    return max(float(d2), 0.0)


def frechet_distance(features1, features2) -> float:
    """Fréchet distance between Gaussians fitted to ``[N, F]`` and ``[M, F]`` features."""
    return gaussian_frechet_distance(*gaussian_moments(features1), *gaussian_moments(features2))


def kth_neighbour_distance(x: Tensor, k: int, batch: int = 1024) -> Tensor:
    """Distance ``[N]`` from each row of ``x [N, F]`` to its k-th nearest other row."""
    if not 1 <= k < x.shape[0]:
        raise VaeAudioError(f"k={k} nearest neighbours need more than k points (got {len(x)})")
    out = []
    for start in range(0, x.shape[0], batch):
        d = torch.cdist(x[start : start + batch], x)  # [b, N]
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])  # index 0: the point itself
    return torch.cat(out)


def _inside(points: Tensor, centres: Tensor, radii: Tensor, batch: int = 1024) -> Tensor:
    """``[P]`` bool: whether each point lies in any ball ``‖p − c_i‖ ≤ r_i``."""
    out = []
    for start in range(0, points.shape[0], batch):
        d = torch.cdist(points[start : start + batch], centres)  # [b, N]
        out.append((d <= radii[None, :]).any(1))
    return torch.cat(out)


@dataclass
class PrecisionRecall:
    """Fractions in ``[0, 1]``; ``k`` the neighbourhood size."""

    precision: float
    recall: float
    k: int

    def as_dict(self) -> dict:
        return asdict(self)


def precision_recall(real, fake, k: int = 3) -> PrecisionRecall:
    """k-NN manifold precision and recall of ``fake [M, F]`` against ``real [N, F]``."""
    real, fake = _features(real, "real"), _features(fake, "generated")
    if real.shape[1] != fake.shape[1]:
        raise VaeAudioError(
            f"feature sizes differ: real {real.shape[1]}, generated {fake.shape[1]}"
        )
    precision = _inside(fake, real, kth_neighbour_distance(real, k)).double().mean()
    recall = _inside(real, fake, kth_neighbour_distance(fake, k)).double().mean()
    return PrecisionRecall(float(precision), float(recall), int(k))
