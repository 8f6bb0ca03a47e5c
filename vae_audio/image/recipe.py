"""`vae-audio train image-vae`: train an image VAE recipe, then plot and evaluate it.

A recipe (``recipes/image_vae/*.yaml``) has the sections ``data`` (:mod:`.data`), ``model``
(:mod:`.build`), ``objective`` (:class:`~vae_audio.image.objectives.ObjectiveConfig`),
``eval`` (:mod:`.evaluate`), ``plots`` (``num_images``, ``traversal_limit``,
``traversal_steps``) and the core's ``trainer`` and ``optim``. The run folder
(``trainer.out_dir``) receives, besides the core's checkpoints, logs, ``config.yaml``,
``model.pt`` and ``curves.png``:

- ``reconstructions.png``, ``samples.png``, ``traversals.png`` (not for the VQ-VAE, whose
  codes are discrete), ``affine_normalisation.png`` for the affine VAE and
  ``component_samples.png`` (one row per prior component) for the mixture-prior VAE;
- ``metrics.json``: validation ELBO terms (nats per image), the requested disentanglement
  metrics (dSprites), the angle spreads of the affine VAE, the JMVAE's image-only
  classification accuracy, the VQ-VAE's codebook usage and perplexity, the mixture-prior
  VAE's clustering accuracy (``eval.cluster_target``: ``label``, or ``factor:K`` for column
  K of the ground-truth factors; default ``factor:0``, the dSprites shape, on dSprites and
  ``label`` on labelled sets).

``objective.kind: vae_gan`` trains with :class:`~vae_audio.image.gan_task.VAEGANTask`
(three optimisers); every other kind with :class:`ImageVAETask`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from vae_audio.core.training import TrainResult, train, with_training_defaults
from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write_text
from vae_audio.image import plots
from vae_audio.image.data import ImageData, build_data, first_batch, with_data_defaults
from vae_audio.image.evaluate import (
    affine_normalisation,
    clustering_on,
    codebook_on,
    disentanglement_scores,
    elbo_on,
)
from vae_audio.image.task import ImageVAETask

_TOP_LEVEL = {"data", "model", "objective", "eval", "plots", "trainer", "optim"}
PLOT_DEFAULTS = {"num_images": 16, "traversal_limit": 2.5, "traversal_steps": 9}


def resolve_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check the top-level sections and fill the data, trainer and optim defaults."""
    unknown = set(config) - _TOP_LEVEL
    if unknown:
        raise VaeAudioError(
            f"image recipe has unknown section(s) {sorted(unknown)}; use {sorted(_TOP_LEVEL)}"
        )
    if "objective" not in config or "kind" not in (config["objective"] or {}):
        raise VaeAudioError("image recipe needs objective.kind (vae, beta_h, beta_b, tcvae, ...)")
    config = with_training_defaults(config)
    config["data"] = with_data_defaults(config.get("data"))
    config["plots"] = {**PLOT_DEFAULTS, **(config.get("plots") or {})}
    config.setdefault("eval", {"metrics": []})
    return config


def train_from_config(config: dict[str, Any], resume: bool = False) -> TrainResult:
    """Train, export, plot and evaluate one image recipe; the run's
    :class:`~vae_audio.core.training.TrainResult` with ``metrics.json`` in ``report``."""
    config = resolve_config(config)
    data = build_data(config["data"])
    task_class = ImageVAETask
    if config["objective"]["kind"] == "vae_gan":
        from vae_audio.image.gan_task import VAEGANTask  # it subclasses ImageVAETask

        task_class = VAEGANTask
    task = task_class(config, data.image_shape, data.num_classes, len(data.train))
    result = train(task, data.loaders(int(config["trainer"]["seed"])), config, resume=resume)
    if result.model_path is None:  # non-zero DDP rank: rank 0 writes the figures
        return result
    out_dir = Path(result.out_dir)
    model = task.model.to(_eval_device(config)).eval()
    write_figures(model, data, config, out_dir)
    metrics = evaluate_run(model, data, config)
    metrics["global_step"] = result.global_step
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    summary = f"image-vae: wrote {out_dir}/model.pt, metrics.json and figures"
    return dataclasses.replace(result, summary=summary, report=metrics)


def _eval_device(config: dict[str, Any]) -> torch.device:
    """CUDA for the post-training figures and metrics when training could use it."""
    use_cuda = torch.cuda.is_available() and config["trainer"]["accelerator"] in (
        "auto",
        "gpu",
        "cuda",
    )
    return torch.device("cuda" if use_cuda else "cpu")


def write_figures(model, data: ImageData, config: dict[str, Any], out_dir: Path) -> None:
    """Reconstructions, prior samples, traversals (and the affine before/after grid)."""
    p = config["plots"]
    batch = first_batch(data.val, int(p["num_images"]))
    device = next(model.parameters()).device
    x = batch["x"].to(device)
    label = batch.get("label")
    label = None if label is None or model.num_classes == 0 else label.to(device)
    plots.save_reconstructions(x, model.reconstruct(x, label), out_dir / "reconstructions.png")
    sample_labels = None
    if model.num_classes and config["objective"]["kind"] == "cvae":
        sample_labels = torch.arange(32) % model.num_classes
    plots.save_samples(model, out_dir / "samples.png", label=sample_labels)
    kind = config["objective"]["kind"]
    if kind == "gmm_vae":
        plots.save_component_samples(model, out_dir / "component_samples.png")
    if hasattr(model, "encode"):  # a Gaussian latent space to traverse
        kl = None
        if kind != "gmm_vae":  # the closed-form KL is to N(0, I), not to a mixture prior
            with torch.no_grad():
                kl = model.encode(x, label).kl_per_dim().mean(0)  # [D] mean KL per dim, nats
        plots.save_traversals(
            model,
            x[:1],
            out_dir / "traversals.png",
            label=None if label is None else label[:1],
            limit=float(p["traversal_limit"]),
            steps=int(p["traversal_steps"]),
            kl_per_dim=kl,
        )
    if config["objective"]["kind"] == "affine":
        plots.save_affine_normalisation(
            x,
            model.reconstruct(x, transform=True),
            model.reconstruct(x, transform=False),
            out_dir / "affine_normalisation.png",
        )


def evaluate_run(model, data: ImageData, config: dict[str, Any]) -> dict[str, Any]:
    """Validation ELBO and the data set's extra measures (see the module docstring)."""
    _, val_loader = data.loaders()
    metrics: dict[str, Any] = {"val": elbo_on(model, val_loader, int(config["trainer"]["seed"]))}
    eval_cfg = config.get("eval") or {}
    if eval_cfg.get("metrics"):
        if data.ground_truth is None:
            raise VaeAudioError(
                f"eval.metrics needs ground-truth factors; data.name={config['data']['name']} has "
                "none (use dsprites, or set eval.metrics=[])"
            )
        metrics["disentanglement"] = disentanglement_scores(model, data.ground_truth, eval_cfg)
    kind = config["objective"]["kind"]
    if kind == "affine":
        images = torch.stack([data.val[i]["x"] for i in range(len(data.val))])
        metrics["affine"] = affine_normalisation(model, images)
    if kind == "vq_vae":
        metrics["codebook"] = codebook_on(model, val_loader)
    if kind == "gmm_vae":
        default = "factor:0" if config["data"]["name"] == "dsprites" else "label"
        target = eval_cfg.get("cluster_target") or default
        if target != "label" or data.num_classes:
            metrics["clustering"] = clustering_on(model, val_loader, target)
    if kind == "jmvae":
        correct = total = 0
        device = next(model.parameters()).device
        for batch in val_loader:
            pred = model.classify(batch["x"].to(device)).cpu()
            correct += int((pred == batch["label"]).sum())
            total += len(pred)
        metrics["image_only_accuracy"] = correct / max(total, 1)
    return metrics
