"""Optimiser and LR-scheduler construction from the optim config section."""

import math

import pytest
import torch

from vae_audio.core.optim import OPTIM_DEFAULTS, build_optimizer, build_scheduler
from vae_audio.errors import VaeAudioError


def _optimizer(**optim):
    return build_optimizer([torch.nn.Parameter(torch.zeros(2))], {**OPTIM_DEFAULTS, **optim})


def test_optimizers_from_config():
    adamw = _optimizer(name="AdamW", lr=0.01, weight_decay=0.1)
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.param_groups[0]["lr"] == 0.01 and adamw.param_groups[0]["weight_decay"] == 0.1
    with pytest.raises(VaeAudioError, match="optim.name='sgd'"):
        _optimizer(name="sgd")


def test_cosine_with_warmup_factors():
    opt = _optimizer(lr=1.0)
    spec = {"kind": "cosine", "warmup_steps": 4, "min_factor": 0.1}
    sched = build_scheduler(opt, spec, total_steps=14, monitor="val/loss")["scheduler"]
    lrs = []
    for _ in range(15):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # after warm-up: 0.1 + 0.9 * ½(1 + cos(π p)), p = (step − 4) / 10
    assert lrs[9] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[14] == pytest.approx(0.1)


def test_plateau_and_errors():
    opt = _optimizer()
    plateau = build_scheduler(opt, {"kind": "plateau", "patience": 2}, 10, "val/loss")
    assert plateau["monitor"] == "val/loss" and plateau["interval"] == "epoch"
    assert build_scheduler(opt, None, 10, "val/loss") is None
    with pytest.raises(VaeAudioError, match="kind='linear' is not supported"):
        build_scheduler(opt, {"kind": "linear"}, 10, "m")
    with pytest.raises(VaeAudioError, match="optim.scheduler 'step'"):
        build_scheduler(opt, {"kind": "step", "size": 3}, 10, "m")
