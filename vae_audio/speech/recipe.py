"""`vae-audio train speech-vae`: train a speech prior on any corpus manifest.

Config sections (see ``recipes/speech_vae/*.yaml``)::

    data:    train_manifest, valid_manifest, segment_seconds, batch_size, num_workers,
             target_dbfs (per-utterance loudness normalisation), report_utterances
    stft:    StftConfig fields
    model:   SpeechVAEConfig fields (n_freq follows the STFT)
    loss:    beta (number or schedule)
    optim, trainer: see vae_audio.core.training

Writes into ``trainer.out_dir``: ``model.pt`` (the prior), ``config.yaml``, ``curves.png``,
``checkpoints/``, and the held-out report (``report.md``, ``report.json``,
``reconstructions.png``, ``prior_samples.png``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from vae_audio.audio.io import load_audio
from vae_audio.core.training import train
from vae_audio.data.levels import normalise_rms
from vae_audio.data.manifest import read_manifest
from vae_audio.errors import VaeAudioError
from vae_audio.speech.report import write_report
from vae_audio.speech.task import SpeechVAETask

DATA_DEFAULTS: dict[str, Any] = {
    "train_manifest": None,
    "valid_manifest": None,
    "segment_seconds": 2.0,
    "batch_size": 32,
    "num_workers": 0,
    "target_dbfs": -25.0,
    "report_utterances": 200,
    "report_examples": 3,
}


def _data_config(config: dict) -> dict:
    given = config.get("data") or {}
    unknown = sorted(set(given) - set(DATA_DEFAULTS))
    if unknown:
        raise VaeAudioError(f"unknown data key(s) {unknown}; known: {sorted(DATA_DEFAULTS)}")
    data = {**DATA_DEFAULTS, **given}
    for key in ("train_manifest", "valid_manifest"):
        if not data[key]:
            raise VaeAudioError(
                f"data.{key} is not set; pass data.{key}=PATH.jsonl (from `vae-audio corpus "
                "tts` or `vae-audio corpus scan`)"
            )
    return data


def load_utterances(manifest: str | Path, sr: int, target_dbfs: float, limit: int | None = None):
    """Loudness-normalised mono utterances ``[S]`` of a corpus manifest (first ``limit``)."""
    waves = []
    for entry in read_manifest(manifest)[:limit]:
        wav, _ = load_audio(entry["path"], sr=sr)
        waves.append(normalise_rms(wav.mean(0), target_dbfs))
    return waves


def build_loaders(config: dict) -> tuple[DataLoader, DataLoader]:
    """Training and validation loaders of random loudness-normalised segments ``[B, S]``."""
    from vae_audio.data.datasets import SpeechSegmentDataset

    data = _data_config(config)
    sr = int((config.get("stft") or {}).get("sample_rate", 16000))
    seed = int((config.get("trainer") or {}).get("seed", 0))
    loaders = []
    for key, shuffle in (("train_manifest", True), ("valid_manifest", False)):
        dataset = SpeechSegmentDataset(
            data[key],
            segment_seconds=data["segment_seconds"],
            sample_rate=sr,
            target_dbfs=data["target_dbfs"],
            seed=seed if shuffle else seed + 1,
            random_offset=shuffle,
        )
        loaders.append(
            DataLoader(
                dataset,
                batch_size=int(data["batch_size"]),
                shuffle=shuffle,
                num_workers=int(data["num_workers"]),
                drop_last=shuffle,
                persistent_workers=int(data["num_workers"]) > 0,
            )
        )
    return loaders[0], loaders[1]


def train_from_config(config: dict, resume: bool = False) -> int:
    """Train, export ``model.pt`` and write the held-out report. Returns an exit code."""
    data = _data_config(config)
    task = SpeechVAETask(config)
    train_loader, valid_loader = build_loaders(config)
    result = train(task, (train_loader, valid_loader), resume=resume)
    if result.model_path is None:  # non-zero DDP rank
        return 0
    sr = task.model.stft_config.sample_rate
    limit = int(data["report_utterances"])
    task.model.eval()
    with torch.no_grad():
        scores = write_report(
            task.model.cpu(),
            load_utterances(data["train_manifest"], sr, data["target_dbfs"], limit),
            load_utterances(data["valid_manifest"], sr, data["target_dbfs"], limit),
            result.out_dir,
            n_examples=int(data["report_examples"]),
        )
    print(
        f"speech prior: {result.model_path} (step {result.global_step}); held-out IS divergence "
        f"{scores.is_div_vae:.2f} nats/frame vs {scores.is_div_fixed_gain:.2f} for the "
        f"gain-adapted mean PSD; report in {result.out_dir / 'report.md'}"
    )
    return 0
