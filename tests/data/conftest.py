"""Shared fixtures for the data tests: the committed corpus and small, fast presets."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session")
def corpus_manifest() -> Path:
    """8 committed TTS utterances (6 train, 2 valid; 4 flite and 4 espeak-ng speakers)."""
    return FIXTURES / "corpus" / "train.jsonl"


def tiny_preset(**changes) -> dict:
    """A preset dict that simulates in well under a second: small dry room, 1-s mixtures."""
    preset = {
        "length": 1.0,
        "room": {"size_xy": [3.0, 4.0], "height": 2.5, "rt60": [0.15, 0.2], "max_order": 4},
        "speakers": {"distance": [0.75, 1.0]},
        "noise": {"n_sources": [3, 4], "snr_db": 12.0},
    }
    for key, value in changes.items():
        if isinstance(value, dict):
            preset.setdefault(key, {}).update(value)
        else:
            preset[key] = value
    return preset


@pytest.fixture(scope="session")
def simulated_set(tmp_path_factory, corpus_manifest) -> Path:
    """Two freshly simulated float32 mixtures (tiny preset, SNR 12 dB, talker 2 at +3 dB)."""
    from vae_audio.data.simulate_set import simulate_dataset

    out = tmp_path_factory.mktemp("sim") / "set"
    preset = tiny_preset(speakers={"level_db": 3.0})
    simulate_dataset(corpus_manifest, out, 2, preset=preset, seed=7, progress=False)
    return out
