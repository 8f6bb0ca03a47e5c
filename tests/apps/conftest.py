"""Short multichannel inputs cut from the committed fixture mixture, and a tiny Neural FCA
model file, for the `vae-audio separate` / `demo` tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MIXTURE = FIXTURES / "mixture" / "000000" / "mix.wav"
MANIFEST = FIXTURES / "mixture" / "manifest.jsonl"
FAST = ["--method", "fastmnmf2", "--iters", "2", "-q"]


def write_cut(path: Path, seconds: float = 0.5, channels: int = 4, offset: int = 0) -> Path:
    """The fixture mixture's samples ``[offset, offset + seconds)`` on its first channels."""
    data, sr = sf.read(MIXTURE, dtype="float32")  # [S, 4]
    cut = data[offset : offset + int(seconds * sr), :channels]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, cut, sr, subtype="PCM_16" if path.suffix == ".flac" else "FLOAT")
    return path


@pytest.fixture
def cuts(tmp_path) -> list[Path]:
    """Three 0.5-s 4-channel inputs with distinct content in tmp_path/in/."""
    return [write_cut(tmp_path / "in" / f"m{k}.wav", offset=4000 * k) for k in range(3)]


def tiny_model_config(n_speakers: int = 2, n_mics: int | None = 4, kind: str = "conv") -> dict:
    """A tiny Neural FastFCA config (n_fft 16): ``n_speakers`` slots, ``n_mics`` (None: any M
    with ``kind="tac"``)."""
    return {
        "stft": {"sample_rate": 16000, "n_fft": 16, "hop_length": 4},
        "model": {
            "n_mics": n_mics,
            "n_speakers": n_speakers,
            "spatial": "jd",
            "noise_latent_dim": 2,
            "noise_hidden": 8,
            "encoder": {
                "kind": kind,
                "io_channels": 8,
                "mid_channels": 8,
                "n_blocks": 2,
                "n_layers": 2,
            },
            "decoder": {"latent_dim": 4, "hidden": 8},
        },
    }


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A randomly initialised Neural FastFCA model for M = 4 (n_fft 16), saved as model.pt."""
    import torch

    from vae_audio.neural_fca import build_neural_fca, save_neural_fca

    torch.manual_seed(0)
    model = build_neural_fca(tiny_model_config())
    return save_neural_fca(tmp_path_factory.mktemp("nfca") / "model.pt", model)


def read(path: Path) -> tuple[np.ndarray, int]:
    return sf.read(path, dtype="float32", always_2d=True)  # [S, M]
