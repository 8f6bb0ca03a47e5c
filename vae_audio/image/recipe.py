"""`vae-audio train image-vae`: train an image VAE recipe, then plot and evaluate it.

A recipe (``recipes/image_vae/*.yaml``) has the sections ``data`` (:mod:`.data`), ``model``
(:mod:`.build`), ``objective`` (:class:`~vae_audio.image.objectives.ObjectiveConfig`),
``eval`` (:mod:`.evaluate`), ``plots`` (``num_images``, ``traversal_limit``,
``traversal_steps``) and the core's ``trainer`` and ``optim``. The run folder
(``trainer.out_dir``) receives, besides the core's checkpoints, logs, ``config.yaml``,
``model.pt`` and ``curves.png``:

- ``reconstructions.png``, ``samples.png``, ``traversals.png``
  (and ``affine_normalisation.png`` for the affine VAE);
- ``metrics.json``: validation ELBO terms (nats per image), the requested disentanglement
  metrics (dSprites), the angle spreads of the affine VAE, the JMVAE's image-only
  classification accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vae_audio.core.training import LossOutput, VAETask, train, with_training_defaults
from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write_text
from vae_audio.image import plots
from vae_audio.image.build import MODEL_KIND, build_model
from vae_audio.image.data import ImageData, build_data, first_batch, with_data_defaults
from vae_audio.image.evaluate import affine_normalisation, disentanglement_scores, elbo_on
from vae_audio.image.objectives import Objective, ObjectiveConfig

_TOP_LEVEL = {"data", "model", "objective", "eval", "plots", "trainer", "optim"}
PLOT_DEFAULTS = {"num_images": 16, "traversal_limit": 2.5, "traversal_steps": 9}


class ImageVAETask(VAETask):
    """Lightning task of every image recipe; the objective kind picks the model."""

    kind = MODEL_KIND

    def __init__(self, config: dict[str, Any], image_shape, num_classes: int, dataset_size: int):
        super().__init__(config)
        objective = ObjectiveConfig.from_config(dict(config.get("objective") or {}))
        self.image_shape = tuple(int(s) for s in image_shape)
        self.num_classes = int(num_classes)
        self.dataset_size = int(dataset_size)
        self.model = build_model(
            dict(config.get("model") or {}), objective.kind, self.image_shape, self.num_classes
        )
        self.objective = Objective(objective, self.dataset_size)

    def compute_loss(self, batch: dict[str, torch.Tensor], stage: str) -> LossOutput:
        out = self.objective(self.model, batch, self.global_step)
        return LossOutput(out.loss, out.logs)

    def export_meta(self) -> dict[str, Any]:
        return {
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "dataset_size": self.dataset_size,
        }


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


def train_from_config(config: dict[str, Any], resume: bool = False) -> int:
    """Train, export, plot and evaluate one image recipe; returns the exit code 0."""
    config = resolve_config(config)
    data = build_data(config["data"])
    task = ImageVAETask(config, data.image_shape, data.num_classes, len(data.train))
    result = train(task, data.loaders(), config, resume=resume)
    out_dir = Path(result.out_dir)
    model = task.model.to(_eval_device(config)).eval()
    write_figures(model, data, config, out_dir)
    metrics = evaluate_run(model, data, config)
    metrics["global_step"] = result.global_step
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    print(f"image-vae: wrote {out_dir}/model.pt, metrics.json and figures")
    return 0


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
    if kind == "jmvae":
        correct = total = 0
        device = next(model.parameters()).device
        for batch in val_loader:
            pred = model.classify(batch["x"].to(device)).cpu()
            correct += int((pred == batch["label"]).sum())
            total += len(pred)
        metrics["image_only_accuracy"] = correct / max(total, 1)
    return metrics
