"""The committed 2-s, 4-mic, 2-talker fixture mixture and a one-talker, noise-free set."""

import json
from pathlib import Path

import pytest
import torch

from vae_audio.audio.io import load_audio, save_audio

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mixture"


@pytest.fixture
def fixture_set() -> Path:
    return FIXTURE


@pytest.fixture
def one_talker_set(tmp_path) -> Path:
    """One mixture whose only component is the fixture's first talker image (no noise)."""
    src, sr = load_audio(FIXTURE / "000000" / "src1.wav")  # [M, S]
    folder = tmp_path / "one" / "000000"
    save_audio(folder / "mix.wav", src, sr)
    save_audio(folder / "src1.wav", src, sr)
    save_audio(folder / "noise.wav", torch.zeros_like(src), sr)
    entry = {"id": "000000", "mix": "000000/mix.wav", "sources": ["000000/src1.wav"],
             "noise": "000000/noise.wav"}  # fmt: skip
    (tmp_path / "one" / "manifest.jsonl").write_text(json.dumps(entry) + "\n")
    return tmp_path / "one"
