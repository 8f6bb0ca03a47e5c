"""Neural FCA on CUDA: the same numbers as on the CPU, and bfloat16 autocast confined to the
networks under CUDA's autocast op lists (which differ from the CPU's). Skipped without a GPU."""

from __future__ import annotations

import pytest
import torch

from vae_audio.neural_fca.objective import neural_fca_loss

from .conftest import random_stft
from .test_precision import ENCODERS, _constant_encoder, _model

pytestmark = pytest.mark.cuda


def _loss(model, x, autocast: bool = False):
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        out = model(x, sample=False)
    return out, neural_fca_loss(x, out, beta=1.0, eps=model.config.eps)


@pytest.mark.parametrize(("spatial", "extra"), ENCODERS)
def test_forward_and_loss_on_cuda_match_the_cpu(spatial, extra):
    model = _model(spatial, extra).eval()
    x = random_stft(2, 4, seed=5)
    cpu, cpu_loss = _loss(model, x)
    gpu, gpu_loss = _loss(model.cuda(), x.cuda())
    torch.testing.assert_close(gpu.lam.cpu(), cpu.lam, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(gpu_loss.loss.cpu(), cpu_loss.loss, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("spatial", "extra"), ENCODERS)
def test_bf16_autocast_on_cuda_leaves_the_statistics_in_float32(spatial, extra):
    model = _model(spatial, extra).cuda()
    _constant_encoder(model)  # exact network outputs: any difference is a statistic in bf16
    x = random_stft(2, 4, seed=6).cuda()
    ref, ref_loss = _loss(model, x)
    out, loss = _loss(model, x, autocast=True)
    for name in ("lam", "kl", "H", "Q", "g"):
        if getattr(ref, name) is not None:
            torch.testing.assert_close(getattr(out, name), getattr(ref, name), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(loss.loss, ref_loss.loss, rtol=1e-6, atol=1e-6)
