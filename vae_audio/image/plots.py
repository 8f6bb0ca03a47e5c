"""Figures of an image VAE (matplotlib, Agg backend): image grids written as PNG.

- :func:`save_reconstructions`: inputs (top rows) over their reconstructions.
- :func:`save_samples`: decoded prior samples (``model.sample`` when the model has its own
  prior, e.g. the VQ-VAE's code prior or a mixture; else ``z ~ N(0, I)``).
- :func:`save_component_samples`: one row of samples per mixture-prior component.
- :func:`save_traversals`: one row per latent dimension, that dimension swept over
  ``[−limit, limit]`` from a seed image's posterior mean, the others held.
- :func:`save_affine_normalisation`: inputs, reconstructions, and reconstructions with the
  affine transform switched off (``A = 0``).

All images are ``[N, C, H, W]`` in ``[0, 1]`` (C = 1 or 3). Files are written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from vae_audio.fileio import atomic_write  # noqa: E402


def image_grid(images: Tensor | np.ndarray, ncol: int, pad: int = 1) -> np.ndarray:
    """Tile ``[N, C, H, W]`` images row-major into one ``[rows (H + pad), ncol (W + pad), C]``."""
    x = torch.as_tensor(images).detach().float().cpu().clamp(0.0, 1.0)
    n, c, h, w = x.shape
    rows = -(-n // ncol)
    grid = torch.ones(rows * (h + pad) + pad, ncol * (w + pad) + pad, c)
    for i in range(n):
        r, col = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = x[i].permute(1, 2, 0)  # [C, H, W] -> [H, W, C]
    return grid.numpy()


def save_grid(
    images: Tensor | np.ndarray,
    ncol: int,
    path: str | os.PathLike,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
) -> None:
    """Save ``[N, C, H, W]`` images as a PNG grid with ``ncol`` columns."""
    grid = image_grid(images, ncol)
    rows = -(-len(images) // ncol)
    fig, ax = plt.subplots(figsize=(max(3.0, 0.5 * ncol + 1.0), max(2.0, 0.5 * rows + 0.6)))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    if row_labels:
        h = grid.shape[0] / rows
        ax.set_yticks([(i + 0.5) * h for i in range(len(row_labels))], list(row_labels), fontsize=7)
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def save_reconstructions(x: Tensor, recon: Tensor, path: str | os.PathLike, ncol: int = 8) -> None:
    """Inputs and reconstructions, ``[N, C, H, W]`` each, interleaved by row blocks."""
    n = (min(len(x), 2 * ncol) // ncol) * ncol or len(x)
    blocks = []
    for start in range(0, n, ncol):
        blocks += [x[start : start + ncol], recon[start : start + ncol]]
    save_grid(torch.cat(blocks), ncol, path, "inputs (odd rows) / reconstructions (even rows)")


@torch.no_grad()
def save_samples(
    model, path: str | os.PathLike, n: int = 32, label: Tensor | None = None, seed: int = 0
):
    """Decode ``n`` prior samples (``label [n]`` for conditional models)."""
    gen = torch.Generator().manual_seed(seed)
    if label is None and hasattr(model, "sample"):
        images = model.sample(n, gen)
    else:
        z = torch.randn(n, model.latent_dim, generator=gen)
        device = next(model.parameters()).device
        images = model.generate(z.to(device), None if label is None else label.to(device))
    save_grid(images, 8, path, "prior samples")


@torch.no_grad()
def save_component_samples(model, path: str | os.PathLike, per_row: int = 8, seed: int = 0):
    """Samples of a mixture-prior model, one row per component ``k`` (``model.sample``)."""
    gen = torch.Generator().manual_seed(seed)
    k = model.prior.num_components
    weights = torch.softmax(model.prior.logits.detach().cpu(), -1)
    rows = [model.sample(per_row, gen, component=c) for c in range(k)]
    labels = [f"{c}: {float(weights[c]):.2f}" for c in range(k)]
    save_grid(torch.cat(rows), per_row, path, "samples per prior component (k: π_k)", labels)


@torch.no_grad()
def traversal_images(
    model, x: Tensor, label: Tensor | None = None, limit: float = 2.5, steps: int = 9
) -> Tensor:
    """Traversal images ``[D · steps, C, H, W]`` from ``x [1, C, H, W]``; row d sweeps dim d."""
    z0 = model.encode(x, label).mean[:1]  # [1, D]
    values = torch.linspace(-limit, limit, steps, dtype=z0.dtype, device=z0.device)  # [steps]
    d = z0.shape[1]
    z = z0.repeat(d * steps, 1).reshape(d, steps, d)  # [D, steps, D]
    idx = torch.arange(d, device=z0.device)
    z[idx, :, idx] = values  # row d sweeps dimension d
    lab = None if label is None else label[:1].repeat(d * steps)
    return model.generate(z.reshape(d * steps, d), lab)  # [D steps, C, H, W]


def save_traversals(
    model,
    x: Tensor,
    path: str | os.PathLike,
    label: Tensor | None = None,
    limit: float = 2.5,
    steps: int = 9,
    kl_per_dim: Tensor | None = None,
) -> None:
    """Latent traversal grid; rows are labelled with their mean KL (nats) when given."""
    images = traversal_images(model, x, label, limit, steps)
    dims = images.shape[0] // steps
    labels = [f"z{d}" for d in range(dims)]
    if kl_per_dim is not None:
        labels = [f"z{d} KL {float(k):.1f}" for d, k in enumerate(kl_per_dim)]
    save_grid(images, steps, path, f"latent traversals, [-{limit}, {limit}]", labels)


def save_affine_normalisation(
    x: Tensor, recon: Tensor, normalised: Tensor, path: str | os.PathLike, ncol: int = 10
) -> None:
    """Rows: inputs, reconstructions, reconstructions with the transform off (``A = 0``)."""
    k = min(ncol, len(x))
    save_grid(
        torch.cat([x[:k], recon[:k], normalised[:k]]),
        k,
        path,
        "affine VAE: before / after normalisation",
        ["input", "recon", "A = 0"],
    )
