"""`separate()` on CUDA gives the CPU's separation (FastMNMF2 and the shipped Neural FastFCA
model), for one mixture and for a batch. Skipped without a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
import torch

from vae_audio.separation import separate

pytestmark = pytest.mark.cuda

MIX = Path(__file__).resolve().parents[1] / "fixtures" / "mixture" / "000000" / "mix.wav"
MODEL = Path(__file__).resolve().parents[2] / "vae_audio" / "_pretrained" / "neural_fca.pt"


def _mixture() -> torch.Tensor:
    wav, _ = sf.read(MIX, dtype="float32", always_2d=True)
    return torch.from_numpy(wav.T.copy())  # [M, S]


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).square().sum() / b.square().sum())


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [("fastmnmf2", {"n_iter": 20}), ("neural-fastfca", {"n_iter": 0, "model": str(MODEL)})],
)
def test_cuda_separation_matches_the_cpu(method, kwargs):
    mix = _mixture()
    cpu = separate(mix, method, n_src=2, seed=0, device="cpu", **kwargs)
    gpu = separate(mix, method, n_src=2, seed=0, device="cuda", **kwargs)
    assert _relative_error(gpu.sources.cpu(), cpu.sources) < 1e-3


def test_a_batch_on_cuda_is_each_item_separated_alone():
    mix = _mixture()
    batch = torch.stack([mix, 0.5 * mix.flip(0)])  # [B, M, S]
    kwargs = {"n_iter": 0, "model": str(MODEL), "device": "cuda"}
    both = separate(batch, "neural-fastfca", n_src=2, **kwargs)
    for b in range(2):
        alone = separate(batch[b], "neural-fastfca", n_src=2, **kwargs)
        assert _relative_error(both.sources[b].cpu(), alone.sources.cpu()) < 1e-4
