"""Optimisers and learning-rate schedulers built from the ``optim`` config section.

::

    optim:
      name: adam            # adam | adamw
      lr: 1.0e-3
      weight_decay: 0.0
      betas: [0.9, 0.999]
      eps: 1.0e-8
      scheduler: null       # or one of:
      # {kind: cosine, warmup_steps: 0, min_factor: 0.0}   per step, over the whole run
      # {kind: step, step_size: 10000, gamma: 0.5}         per step
      # {kind: plateau, factor: 0.5, patience: 5}          per epoch, on the monitored metric
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from vae_audio.errors import VaeAudioError

OPTIM_DEFAULTS: dict[str, Any] = {
    "name": "adam",
    "lr": 1.0e-3,
    "weight_decay": 0.0,
    "betas": [0.9, 0.999],
    "eps": 1.0e-8,
    "scheduler": None,
}

_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def build_optimizer(params: Iterable[torch.nn.Parameter], optim: dict) -> torch.optim.Optimizer:
    """Adam or AdamW from a resolved ``optim`` section."""
    name = str(optim["name"]).lower()
    if name not in _OPTIMIZERS:
        raise VaeAudioError(
            f"optim.name={name!r} is not supported; use one of {sorted(_OPTIMIZERS)}"
        )
    return _OPTIMIZERS[name](
        params,
        lr=float(optim["lr"]),
        weight_decay=float(optim["weight_decay"]),
        betas=tuple(float(b) for b in optim["betas"]),
        eps=float(optim["eps"]),
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, spec: dict | None, total_steps: int, monitor: str
) -> dict | None:
    """Lightning ``lr_scheduler`` config dict for ``spec`` (None: no scheduler).

    Args:
        total_steps: optimiser steps of the whole run (``trainer.estimated_stepping_batches``),
            used by ``cosine``.
        monitor: metric that ``plateau`` watches.
    """
    if spec is None:
        return None
    spec = dict(spec)
    kind = spec.pop("kind", None)
    try:
        if kind == "cosine":
            factor = _cosine_factor(total_steps, **spec)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
            return {"scheduler": scheduler, "interval": "step"}
        if kind == "step":
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, **spec)
            return {"scheduler": scheduler, "interval": "step"}
        if kind == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **spec)
            return {"scheduler": scheduler, "interval": "epoch", "monitor": monitor}
    except TypeError as err:
        raise VaeAudioError(f"optim.scheduler {kind!r}: {err}; fix its parameters") from None
    raise VaeAudioError(
        f"optim.scheduler.kind={kind!r} is not supported; use cosine, step or plateau (or null)"
    )


def _cosine_factor(total_steps: int, warmup_steps: int = 0, min_factor: float = 0.0):
    """Linear warm-up then cosine decay to ``min_factor`` (Loshchilov & Hutter 2017, Eq. (5))."""
    total = max(int(total_steps), 1)
    warmup = int(warmup_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
