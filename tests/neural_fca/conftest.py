"""Tiny Neural FCA models for the tests (random speech decoder, small STFT and encoder)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MIXTURE_MANIFEST = FIXTURES / "mixture" / "manifest.jsonl"

TINY = {
    "stft": {"sample_rate": 16000, "n_fft": 16, "hop_length": 4},
    "model": {
        "n_mics": 4,
        "n_speakers": 2,
        "em_iterations": 3,
        "noise_latent_dim": 2,
        "noise_hidden": 8,
        "encoder": {"io_channels": 8, "mid_channels": 8, "n_blocks": 2, "n_layers": 2},
        "decoder": {"latent_dim": 4, "hidden": 8},
    },
}


def tiny_config(n_mics: int = 4, spatial: str = "full", **model) -> dict:
    """Config with ``model`` and ``stft`` sections: F = 9 bins, D = 4, N = 3."""
    config = copy.deepcopy(TINY)
    config["model"].update(n_mics=n_mics, spatial=spatial, **model)
    return config


def tiny_model(n_mics: int = 4, spatial: str = "full", seed: int = 0, **model):
    from vae_audio.neural_fca import build_neural_fca

    torch.manual_seed(seed)
    return build_neural_fca(tiny_config(n_mics, spatial, **model))


def random_stft(B: int, M: int, F: int = 9, T: int = 24, seed: int = 0, dtype=torch.complex64):
    """Seeded complex Gaussian ``[B, M, F, T]`` with a rank-1 component shared by the mics,
    so that the spatial model has something to explain."""
    g = torch.Generator().manual_seed(seed)
    real = torch.float64

    def cn(*shape):
        return torch.complex(
            torch.randn(*shape, generator=g, dtype=real),
            torch.randn(*shape, generator=g, dtype=real),
        )

    steer = cn(B, M, F, 1)
    x = steer * cn(B, 1, F, T) * 2 + 0.3 * cn(B, M, F, T)
    return x.to(dtype)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
