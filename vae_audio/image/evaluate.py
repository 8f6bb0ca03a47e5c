"""Evaluation of a trained image VAE: ELBO, disentanglement metrics, affine normalisation.

- :func:`elbo_on`: mean negative-ELBO terms on a data loader (one posterior sample per image;
  nats per image).
- :func:`disentanglement_scores`: the metrics named in ``eval.metrics`` on a ground-truth data
  set, with the encoder mean as representation (disentanglement_lib's convention).
- :func:`affine_normalisation`: spread of the digits' principal-axis angle in the inputs vs
  the affine VAE's reconstructions with the transform off.
- :func:`codebook_on`: VQ-VAE codebook usage and perplexity over a data loader.
- :func:`clustering_on`: a mixture-prior VAE's clustering accuracy against a label (digits'
  class, or a ground-truth factor such as the dSprites shape).

``eval`` section of a recipe::

    eval:
      seed: 0
      metrics: [mig, factor_vae, beta_vae]   # any of beta_vae factor_vae mig dci chen_mig
      params: {beta_vae: {num_train: 1000}}  # per-metric keyword overrides (protocol sizes)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from vae_audio.errors import VaeAudioError
from vae_audio.image.datasets.ground_truth import GroundTruthData
from vae_audio.image.metrics import (
    clustering_accuracy,
    compute_beta_vae,
    compute_chen_mig,
    compute_dci,
    compute_factor_vae,
    compute_mig,
)
from vae_audio.image.moments import axial_std, image_moments
from vae_audio.image.vq import code_histogram, perplexity

METRICS: dict[str, Callable] = {
    "beta_vae": compute_beta_vae,
    "factor_vae": compute_factor_vae,
    "mig": compute_mig,
    "dci": compute_dci,
    "chen_mig": compute_chen_mig,
}


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def representation_function(model: nn.Module, batch_size: int = 256):
    """``[B, C, H, W]`` NumPy observations -> ``[B, D]`` encoder means (NumPy)."""

    @torch.no_grad()
    def represent(x: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(x[start : start + batch_size], device=_device(model))
            out.append(model.encode(xb.float()).mean.cpu().double().numpy())
        return np.concatenate(out)

    return represent


def posterior_function(model: nn.Module, batch_size: int = 256):
    """``[B, C, H, W]`` NumPy observations -> ``(mean, logvar)``, ``[B, D]`` each (NumPy)."""

    @torch.no_grad()
    def posterior(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        means, logvars = [], []
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(x[start : start + batch_size], device=_device(model))
            q = model.encode(xb.float())
            means.append(q.mean.cpu().double().numpy())
            logvars.append(q.logvar.cpu().double().numpy())
        return np.concatenate(means), np.concatenate(logvars)

    return posterior


@torch.no_grad()
def elbo_on(model: nn.Module, loader: DataLoader, seed: int = 0) -> dict[str, float]:
    """Mean ``nll``, ``kl`` and ``elbo = −(nll + kl)`` over ``loader`` (nats per image)."""
    was_training = model.training
    model.eval()
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    total = {"nll": 0.0, "kl": 0.0}
    count = 0
    try:
        for batch in loader:
            x = batch["x"].to(_device(model))
            label = batch.get("label")
            label = None if label is None else label.to(x.device)
            out = model(x, label)
            if hasattr(out, "recon_nll_x"):  # JMVAE: image and label terms
                nll = out.recon_nll_x + out.recon_nll_y
            else:
                nll = out.recon_nll
            total["nll"] += float(nll.sum())
            total["kl"] += float(out.kl.sum())
            count += x.shape[0]
    finally:
        torch.random.set_rng_state(gen_state)
        model.train(was_training)
    if count == 0:
        raise VaeAudioError("evaluation data set is empty; set data.num_val > 0")
    nll, kl = total["nll"] / count, total["kl"] / count
    return {"nll": nll, "kl": kl, "elbo": -(nll + kl)}


def disentanglement_scores(
    model: nn.Module, data: GroundTruthData, eval_cfg: dict[str, Any]
) -> dict[str, dict]:
    """Run the metrics listed in ``eval_cfg["metrics"]``; returns ``{name: score dict}``."""
    names = list(eval_cfg.get("metrics") or [])
    params = eval_cfg.get("params") or {}
    unknown = (set(names) | set(params)) - set(METRICS)
    if unknown:
        raise VaeAudioError(
            f"eval metric(s) {sorted(unknown)} unknown; use any of {sorted(METRICS)}"
        )
    seed = int(eval_cfg.get("seed", 0))
    was_training = model.training
    model.eval()
    scores = {}
    try:
        for name in names:
            fn = posterior_function(model) if name == "chen_mig" else representation_function(model)
            result = METRICS[name](data, fn, np.random.RandomState(seed), **params.get(name, {}))
            scores[name] = result.as_dict()
    finally:
        model.train(was_training)
    return scores


@torch.no_grad()
def affine_normalisation(model: nn.Module, images: torch.Tensor) -> dict[str, float]:
    """Principal-axis angle spread (radians, axial circular std) of inputs and reconstructions.

    Args:
        model: an :class:`~vae_audio.image.models.AffineVAE`.
        images: ``[B, 1, H, W]`` digits.

    Returns:
        ``input_angle_std``, ``recon_angle_std`` (transform on) and ``normalised_angle_std``
        (transform off, ``A = 0``).
    """
    was_training = model.training
    model.eval()
    try:
        x = images.to(_device(model))
        recon = model.reconstruct(x, transform=True)
        normalised = model.reconstruct(x, transform=False)
    finally:
        model.train(was_training)
    return {
        "input_angle_std": axial_std(image_moments(x).angle),
        "recon_angle_std": axial_std(image_moments(recon).angle),
        "normalised_angle_std": axial_std(image_moments(normalised).angle),
    }


@torch.no_grad()
def codebook_on(model: nn.Module, loader: DataLoader) -> dict[str, float]:
    """VQ-VAE codes over ``loader``: ``perplexity`` (effective number of codes, exp of the
    code entropy), ``usage`` (fraction of the K codes used at least once)."""
    counts = torch.zeros(model.quantizer.num_codes)
    for batch in loader:
        indices = model.codes(batch["x"].to(_device(model)))
        counts += code_histogram(indices, model.quantizer.num_codes).cpu()
    return {"perplexity": float(perplexity(counts)), "usage": float((counts > 0).float().mean())}


@torch.no_grad()
def clustering_on(model: nn.Module, loader: DataLoader, target: str = "label") -> dict:
    """Clustering accuracy of ``model.cluster`` over ``loader`` against ``target``.

    ``target``: ``label`` (the batch's class labels) or ``factor:K`` (column K of the batch's
    ground-truth factor indices, e.g. ``factor:0`` for the dSprites shape).
    """
    assigned, truth = [], []
    for batch in loader:
        if target == "label":
            labels = batch.get("label")
        elif target.startswith("factor:") and "factors" in batch:
            labels = batch["factors"][:, int(target.split(":", 1)[1])]
        else:
            labels = None
        if labels is None:
            raise VaeAudioError(f"clustering target {target!r} is not in the data batches")
        assigned.append(model.cluster(batch["x"].to(_device(model))).cpu())
        truth.append(labels.long())
    score = clustering_accuracy(
        torch.cat(assigned).numpy(), torch.cat(truth).numpy(), model.prior.num_components
    )
    return {"target": target, **score.as_dict()}
