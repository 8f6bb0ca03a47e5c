"""Lightning training base shared by every recipe, and the :func:`train` entry point.

A recipe subclasses :class:`VAETask`, builds its model in ``__init__(config)`` (as
``self.model`` for export) and implements ``compute_loss(batch, stage) -> LossOutput``. The
base logs ``{stage}/loss`` and every entry of ``LossOutput.logs`` (train: per step and per
epoch, val: per epoch) and builds the optimiser from ``config["optim"]`` (:mod:`.optim`).

:func:`train` reads ``config["trainer"]`` (keys and defaults in :data:`TRAINER_DEFAULTS`) and
lays a run folder out as::

    out_dir/config.yaml               resolved config (defaults filled in)
    out_dir/checkpoints/last.ckpt     Lightning training state, for --resume (every epoch and
                                      every trainer.checkpoint_every_n_steps steps)
    out_dir/checkpoints/best-*.ckpt   best by trainer.monitor
    out_dir/logs/version_K/metrics.csv   CSV log, one version per (re)start
    out_dir/model.pt                  exported weights + config (checkpoint.save_model)
    out_dir/curves.png                training curves

Multi-GPU and multi-node runs need no code change: ``devices``/``strategy``/``num_nodes`` go
to Lightning, which picks up torchrun or SLURM environments ("auto" strategy → DDP).

**Reproducible and resumable.** Every training step reseeds torch, NumPy and ``random`` from
``(seed, epoch, batch index, rank)`` and every validation step from ``(seed, batch index,
rank)``, so the noise a step draws does not depend on what ran before it (validation, a
restart, another rank). Trained on a :class:`~vae_audio.core.loader.ResumableLoader` (what the
recipes use), the data order and per-item draws are functions of ``(seed, epoch, index)`` and
the checkpoint records the position inside the epoch. Together: a run killed at any point
and resumed from its ``last.ckpt`` (written at an epoch end or mid-epoch) ends with the same
weights as an uninterrupted run (bitwise on the CPU; on GPUs, with
``trainer.deterministic: true``, up to the nondeterminism of the kernels), and two runs with
the same seed agree. A run stopped by ``max_steps`` is continued by raising ``max_steps``:
Lightning closes the epoch of such a run, so an epoch-limited continuation skips its rest.
"""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import Tensor, nn

from vae_audio.core._rng import rng_state, seed_all, set_rng_state
from vae_audio.core.checkpoint import FORMAT as MODEL_FORMAT
from vae_audio.core.checkpoint import save_model
from vae_audio.core.config import save_config
from vae_audio.core.curves import plot_curves
from vae_audio.core.draws import derive_seed
from vae_audio.core.loader import ResumableLoader
from vae_audio.core.optim import OPTIM_DEFAULTS, build_optimizer, build_scheduler
from vae_audio.core.schedules import Schedule
from vae_audio.errors import VaeAudioError

TRAINER_DEFAULTS: dict[str, Any] = {
    "out_dir": "runs/default",
    "seed": 0,
    "max_epochs": 100,
    "max_steps": -1,
    "accelerator": "auto",
    "devices": "auto",
    "strategy": "auto",
    "num_nodes": 1,
    "precision": "32",  # "32" | "16-mixed" | "bf16-mixed" | "64"
    "gradient_clip_val": None,
    "accumulate_grad_batches": 1,
    "log_every_n_steps": 50,
    "check_val_every_n_epoch": 1,
    "val_check_interval": None,
    "limit_train_batches": None,
    "limit_val_batches": None,
    "num_sanity_val_steps": 2,
    "enable_progress_bar": True,
    "deterministic": False,
    "monitor": None,  # default "val/loss" with validation data, else "train/loss_epoch"
    "monitor_mode": "min",
    "save_top_k": 1,
    "checkpoint_every_n_steps": 500,  # also refresh last.ckpt every N optimiser steps (0: off)
    "export": "best",  # which weights go to model.pt: "best" | "last"
    "overwrite": False,  # allow a fresh run in a folder that holds one
    "tensorboard": True,  # also log to TensorBoard when it is installed
}
_PRECISIONS = ("32", "32-true", "16-mixed", "bf16-mixed", "64", "64-true")


@dataclass
class LossOutput:
    """What :meth:`VAETask.compute_loss` returns.

    Attributes:
        loss: scalar to minimise (its reduction is the recipe's, stated there).
        logs: extra scalars logged as ``{stage}/{name}`` (e.g. ``recon``, ``kl``, ``beta``).
    """

    loss: Tensor
    logs: dict[str, Tensor | float] = field(default_factory=dict)


@dataclass
class TrainResult:
    """Where a run's outputs are and how it ended (paths are None on non-zero DDP ranks).

    A recipe's ``train_from_config`` returns it with ``summary`` (one line for the user,
    which ``vae-audio train`` prints) and ``report`` (the recipe's held-out numbers) filled in.
    """

    out_dir: Path
    global_step: int
    epoch: int
    metrics: dict[str, float]
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    best_score: float | None
    model_path: Path | None
    metrics_csv: list[Path]
    curves_png: Path | None
    summary: str = ""
    report: dict[str, Any] = field(default_factory=dict)


def with_training_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """Copy of ``config`` with ``trainer`` and ``optim`` sections completed from the defaults.

    Raises:
        VaeAudioError: an unknown ``trainer``/``optim`` key (a typo) or a bad precision.
    """
    config = copy.deepcopy(config)
    for section, defaults in (("trainer", TRAINER_DEFAULTS), ("optim", OPTIM_DEFAULTS)):
        given = config.get(section) or {}
        if not isinstance(given, dict):
            raise VaeAudioError(f"config section {section!r} must be a mapping, got {given!r}")
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise VaeAudioError(
                f"unknown {section} key(s) {unknown}; known keys: {sorted(defaults)}"
            )
        config[section] = {**copy.deepcopy(defaults), **given}
    precision = str(config["trainer"]["precision"])
    if precision not in _PRECISIONS:
        raise VaeAudioError(f"trainer.precision={precision!r}; use one of {list(_PRECISIONS)}")
    config["trainer"]["precision"] = precision
    return config


class VAETask(L.LightningModule):
    """Base Lightning module: subclasses build ``self.model`` and define ``compute_loss``.

    Class attributes:
        kind: the exported model's kind (see :func:`vae_audio.core.checkpoint.check_kind`).

    Resuming loads ``last.ckpt`` with ``weights_only=True``: anything a subclass adds to the
    checkpoint (hyper-parameters, ``on_save_checkpoint`` extras) must be tensors or plain data.
    """

    kind: ClassVar[str] = "model"

    def __init__(self, config: dict[str, Any]) -> None:
        """Resolve the config and seed every RNG with ``trainer.seed``, so that the model a
        subclass builds after ``super().__init__(config)`` starts from reproducible weights."""
        super().__init__()
        self.config = with_training_defaults(config)
        L.seed_everything(int(self.config["trainer"]["seed"]), workers=True, verbose=False)

    def compute_loss(self, batch: Any, stage: str) -> LossOutput:
        """Loss of one batch; ``stage`` is ``"train"`` or ``"val"``."""
        raise NotImplementedError

    def scheduled(self, spec: float | dict) -> float:
        """Value of a schedule spec (number or ``{kind: ...}``) at the current global step."""
        return Schedule.from_config(spec)(self.global_step)

    def export_state(self) -> dict[str, Tensor]:
        """Weights written to ``model.pt``: ``self.model.state_dict()`` if present."""
        model = getattr(self, "model", None)
        return (model if isinstance(model, nn.Module) else self).state_dict()

    def export_meta(self) -> dict[str, Any]:
        """Extra plain data for ``model.pt`` (override to add e.g. feature statistics)."""
        return {}

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        self._seed_step(1, self.current_epoch, batch_idx)
        out = self.compute_loss(batch, "train")
        self._log_output("train", out, batch)
        return out.loss

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        self._seed_step(2, batch_idx)
        out = self.compute_loss(batch, "val")
        self._log_output("val", out, batch)
        return out.loss

    def configure_optimizers(self):
        optim = self.config["optim"]
        optimizer = build_optimizer((p for p in self.parameters() if p.requires_grad), optim)
        scheduler = build_scheduler(
            optimizer,
            optim["scheduler"],
            total_steps=int(self.trainer.estimated_stepping_batches),
            monitor=_monitor(self.config["trainer"], has_val=True),
        )
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["vae_audio_rng"] = rng_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "vae_audio_rng" in checkpoint:
            set_rng_state(checkpoint["vae_audio_rng"])

    def _seed_step(self, *coords: int) -> None:
        """Reseed every global RNG from ``(seed, *coords, rank)`` (module docstring)."""
        rank = self.trainer.global_rank if self._trainer is not None else 0
        seed_all(derive_seed([int(self.config["trainer"]["seed"]), *coords, rank]))

    def _log_output(self, stage: str, out: LossOutput, batch: Any) -> None:
        train = stage == "train"
        kwargs = dict(
            on_step=train, on_epoch=True, batch_size=_batch_size(batch), sync_dist=not train
        )
        self.log(f"{stage}/loss", out.loss, prog_bar=True, **kwargs)
        for name, value in out.logs.items():
            self.log(f"{stage}/{name}", value, **kwargs)


def train(
    task: VAETask, data: Any, config: dict | None = None, resume: bool = False
) -> TrainResult:
    """Fit ``task`` on ``data`` with the ``trainer`` section of ``config``; export and plot.

    Args:
        task: the recipe's :class:`VAETask`.
        data: a ``LightningDataModule``, a train ``DataLoader``, or ``(train, val)`` loaders
            (``val`` may be None).
        config: full config (defaults: ``task.config``); ``trainer`` keys in
            :data:`TRAINER_DEFAULTS`.
        resume: continue from ``out_dir/checkpoints/last.ckpt`` (same global step, optimiser
            and RNG states, and, with a :class:`ResumableLoader`, the position in the epoch).

    Returns:
        :class:`TrainResult`. After the call ``task`` holds the exported weights and
        ``task.config`` the resolved config (``trainer.monitor`` filled in).

    Raises:
        VaeAudioError: resume without a checkpoint or from one that is unreadable or does
            not fit ``task``; a fresh run into a used folder.
    """
    config = with_training_defaults(task.config if config is None else config)
    tcfg = config["trainer"]
    out_dir = Path(tcfg["out_dir"])
    ckpt_dir = out_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume and not last.is_file():
        raise VaeAudioError(
            f"cannot resume: {last} does not exist; train without --resume first, or set "
            "trainer.out_dir to the folder of the run to continue"
        )
    if not resume and last.exists() and not tcfg["overwrite"]:
        raise VaeAudioError(
            f"{out_dir} already holds a run ({last}); pass --resume to continue it, "
            "trainer.overwrite=true to start over, or another trainer.out_dir"
        )
    loader_state = _read_resume_checkpoint(last, task) if resume else None
    L.seed_everything(int(tcfg["seed"]), workers=True, verbose=False)
    train_loader, val_loader, datamodule = _split_data(data)
    if isinstance(train_loader, ResumableLoader) and loader_state is not None:
        # Lightning restores loader states only when it built the loaders after restoring,
        # which configure_optimizers (estimated_stepping_batches) prevents: do it here.
        train_loader.load_state_dict(loader_state)
    has_val = val_loader is not None or (
        datamodule is not None and is_overridden("val_dataloader", datamodule)
    )
    monitor = tcfg["monitor"] = _monitor(tcfg, has_val)
    task.config = config  # one resolved config for the optimiser, config.yaml and the export
    checkpoint_cb = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best-{epoch}-{step}",
        monitor=monitor,
        mode=tcfg["monitor_mode"],
        save_top_k=int(tcfg["save_top_k"]),
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    # Lightning 2.6 refreshes `save_last` only when a top-k save happens, so the latest
    # state gets its own unmonitored callback, overwritten every epoch.
    last_cb = ModelCheckpoint(
        dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1, enable_version_counter=False
    )
    callbacks = [checkpoint_cb, last_cb]
    every = int(tcfg["checkpoint_every_n_steps"] or 0)
    if every > 0:  # mid-epoch saves bound what a killed run loses (ModelCheckpoint takes one
        # trigger per instance: a second one refreshes the same file every `every` steps)
        callbacks.append(
            ModelCheckpoint(
                dirpath=ckpt_dir,
                filename="last",
                monitor=None,
                save_top_k=1,
                every_n_train_steps=every,
                enable_version_counter=False,
            )
        )
    loggers = [CSVLogger(save_dir=out_dir, name="logs")]
    if tcfg["tensorboard"] and importlib.util.find_spec("tensorboard") is not None:
        loggers.append(TensorBoardLogger(save_dir=out_dir, name="tb", version=loggers[0].version))
    optional = ("gradient_clip_val", "val_check_interval", "limit_train_batches")
    extra = {k: tcfg[k] for k in (*optional, "limit_val_batches") if tcfg[k] is not None}
    trainer = L.Trainer(
        default_root_dir=out_dir,
        max_epochs=tcfg["max_epochs"],
        max_steps=tcfg["max_steps"],
        accelerator=tcfg["accelerator"],
        devices=tcfg["devices"],
        strategy=tcfg["strategy"],
        num_nodes=tcfg["num_nodes"],
        precision=tcfg["precision"],
        accumulate_grad_batches=tcfg["accumulate_grad_batches"],
        log_every_n_steps=tcfg["log_every_n_steps"],
        check_val_every_n_epoch=tcfg["check_val_every_n_epoch"],
        num_sanity_val_steps=tcfg["num_sanity_val_steps"],
        enable_progress_bar=tcfg["enable_progress_bar"],
        deterministic=tcfg["deterministic"],
        logger=loggers,
        callbacks=callbacks,
        # a ResumableLoader splits its order across ranks itself
        use_distributed_sampler=not isinstance(train_loader, ResumableLoader),
        **extra,
    )
    if isinstance(train_loader, ResumableLoader):
        train_loader.follow(lambda: trainer.current_epoch)
    if trainer.is_global_zero:
        save_config(config, out_dir / "config.yaml")
    try:
        trainer.fit(
            task,
            train_dataloaders=train_loader,
            val_dataloaders=val_loader,
            datamodule=datamodule,
            ckpt_path=str(last) if resume else None,
            weights_only=True,
        )
    finally:
        if isinstance(train_loader, ResumableLoader):
            train_loader.follow(None)
    return _finish(task, trainer, checkpoint_cb, last, config, out_dir)


def _finish(task, trainer, checkpoint_cb, last: Path, config, out_dir: Path) -> TrainResult:
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    best = Path(checkpoint_cb.best_model_path) if checkpoint_cb.best_model_path else None
    last = last if last.is_file() else None
    score = checkpoint_cb.best_model_score
    result = TrainResult(
        out_dir=out_dir,
        global_step=trainer.global_step,
        epoch=trainer.current_epoch,
        metrics=metrics,
        last_checkpoint=last,
        best_checkpoint=best,
        best_score=None if score is None else float(score),
        model_path=None,
        metrics_csv=[],
        curves_png=None,
    )
    if not trainer.is_global_zero:
        return result
    source = best if config["trainer"]["export"] == "best" and best is not None else last
    if source is not None and source.is_file():
        state = torch.load(source, map_location="cpu", weights_only=True)["state_dict"]
        task.load_state_dict(state)
    meta = {
        "kind": task.kind,
        "global_step": trainer.global_step,
        "epoch": trainer.current_epoch,
        "source_checkpoint": source.name if source is not None else None,
        "monitor": checkpoint_cb.monitor,
        "best_score": result.best_score,
        **task.export_meta(),
    }
    result.model_path = save_model(
        out_dir / "model.pt", task.export_state(), config, meta, task.kind
    )
    csvs = sorted(
        (out_dir / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:])
    )
    result.metrics_csv = csvs
    if csvs:
        result.curves_png = plot_curves(csvs, out_dir / "curves.png")
    return result


def _read_resume_checkpoint(path: Path, task: VAETask) -> dict[str, int] | None:
    """The training loader's position saved in ``path`` (None if none was saved).

    Raises:
        VaeAudioError: (one line) ``path`` is not a training checkpoint whose weights fit
            ``task`` (names and shapes).
    """
    fix = (
        "replace it with a good copy (e.g. one of the run's checkpoints/best-*.ckpt) or start "
        "the run over without --resume and with trainer.overwrite=true"
    )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types for a bad file
        what = (
            "holds pickled objects that only code could rebuild, not weights and plain data"
            if "Unsupported global" in str(err)  # weights_only refused a class
            else "is corrupt, truncated or not a PyTorch training checkpoint"
        )
        raise VaeAudioError(f"cannot resume from {path}: it {what}; {fix}") from None
    if isinstance(ckpt, dict) and ckpt.get("format") == MODEL_FORMAT:
        raise VaeAudioError(
            f"cannot resume from {path}: it holds exported model weights (a model.pt), not the "
            f"training state Lightning writes; {fix}"
        )
    if not (
        isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict) and "loops" in ckpt
    ):
        raise VaeAudioError(
            f"cannot resume from {path}: it is a PyTorch file but not a Lightning training "
            f"checkpoint (no state_dict and loop state); {fix}"
        )
    own = task.state_dict()
    saved = ckpt["state_dict"]
    wrong = sorted(set(own) ^ set(saved)) or [
        k for k in own if getattr(saved[k], "shape", None) != own[k].shape
    ]
    if wrong:
        raise VaeAudioError(
            f"cannot resume from {path}: its weights do not fit this recipe's model "
            f"({len(wrong)} tensor(s) missing, extra or of another shape, e.g. {wrong[0]!r}); "
            "resume with the config the run was trained with (its config.yaml), or start a new "
            "run in another trainer.out_dir"
        )
    states = _get(_get(_get(ckpt, "loops"), "fit_loop"), "state_dict").get("combined_loader")
    return states[0] if isinstance(states, list) and len(states) == 1 else None


def _get(mapping: Any, key: str) -> dict:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, dict) else {}


def _monitor(tcfg: dict, has_val: bool) -> str:
    return tcfg["monitor"] or ("val/loss" if has_val else "train/loss_epoch")


def _split_data(data: Any):
    """``(train_loader, val_loader, datamodule)`` from the accepted forms of ``data``."""
    if isinstance(data, L.LightningDataModule):
        return None, None, data
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ValueError("pass data as (train_loader, val_loader)")
        return data[0], data[1], None
    return data, None, None


def _batch_size(batch: Any) -> int | None:
    """Leading size of the first tensor found in ``batch`` (None if there is none)."""
    if isinstance(batch, Tensor):
        return batch.shape[0] if batch.dim() > 0 else None
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (tuple, list)):
        for item in batch:
            size = _batch_size(item)
            if size is not None:
                return size
    return None
