"""`vae-audio train speech-vae`: train a speech prior on any corpus manifest.

Config sections (see ``recipes/speech_vae/*.yaml``)::

    data:    train_manifest, valid_manifest, segment_seconds, batch_size, num_workers,
             target_dbfs (per-utterance loudness normalisation), report_utterances

``train_manifest`` and ``valid_manifest`` take one manifest or a list of them, whose union
is used; a list item may be ``{manifest: PATH, repeat: K}`` to draw that corpus K times per
epoch (e.g. a small recorded corpus next to hours of TTS)::

    train_manifest:
      - data/tts10/espeak_en/train.jsonl
      - {manifest: data/prompts/train.jsonl, repeat: 4}

    stft:    StftConfig fields
    model:   SpeechVAEConfig fields (n_freq follows the STFT)
    loss:    beta (number or schedule)
    optim, trainer: see vae_audio.core.training

Writes into ``trainer.out_dir``: ``model.pt`` (the prior), ``config.yaml``, ``curves.png``,
``checkpoints/``, and the held-out report (``report.md``, ``report.json``,
``reconstructions.png``, ``prior_samples.png``).
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import ConcatDataset

from vae_audio.audio.io import load_audio
from vae_audio.core.loader import ResumableLoader
from vae_audio.core.training import TrainResult, train
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
        data[key] = manifest_list(data[key], f"data.{key}")
    return data


def manifest_list(value: Any, key: str = "data.train_manifest") -> list[tuple[str, int]]:
    """``(manifest path, repeat)`` pairs of a manifest setting (module docstring).

    Raises:
        VaeAudioError: an item is neither a path nor ``{manifest: PATH, repeat: K >= 1}``.
    """
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, (str, Path)):
            out.append((str(item), 1))
            continue
        if isinstance(item, tuple) and len(item) == 2:  # already a (path, repeat) pair
            item = {"manifest": item[0], "repeat": item[1]}
        repeat = item.get("repeat", 1) if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("manifest"), (str, Path))
            or set(item) - {"manifest", "repeat"}
            or isinstance(repeat, bool)
            or not isinstance(repeat, int)
            or repeat < 1
        ):
            raise VaeAudioError(
                f"{key}: {item!r} is not a manifest; give PATH.jsonl or "
                "{manifest: PATH.jsonl, repeat: K} with an integer K >= 1"
            )
        out.append((str(item["manifest"]), repeat))
    if not out:
        raise VaeAudioError(f"{key} is an empty list; name at least one manifest")
    return out


def load_utterances(
    manifest: str | Path | list, sr: int, target_dbfs: float, limit: int | None = None
):
    """Loudness-normalised mono utterances ``[S]`` of a corpus manifest (first ``limit``).

    ``manifest`` may also be a list (:func:`manifest_list`); ``limit`` then takes utterances
    from every manifest in turn (repeats ignored), so each corpus is represented.
    """
    if isinstance(manifest, (str, Path)):
        entries = read_manifest(manifest)[:limit]
    else:
        per = [read_manifest(path) for path, _ in manifest_list(manifest)]
        entries = [e for group in itertools.zip_longest(*per) for e in group if e is not None]
        entries = entries[:limit]
    waves = []
    for entry in entries:
        wav, _ = load_audio(entry["path"], sr=sr)
        waves.append(normalise_rms(wav.mean(0), target_dbfs))
    return waves


def build_loaders(config: dict) -> tuple[ResumableLoader, ResumableLoader]:
    """Training and validation loaders of random loudness-normalised segments ``[B, S]``
    (order and crops seeded by ``trainer.seed``, resumable mid-epoch)."""
    from vae_audio.data.datasets import SpeechSegmentDataset

    data = _data_config(config)
    sr = int((config.get("stft") or {}).get("sample_rate", 16000))
    seed = int((config.get("trainer") or {}).get("seed", 0))
    loaders = []
    for key, shuffle in (("train_manifest", True), ("valid_manifest", False)):
        parts = []
        for path, repeat in data[key]:
            # each repeat draws its own crops (its own seed): K different segments per epoch
            parts += [
                SpeechSegmentDataset(
                    path,
                    segment_seconds=data["segment_seconds"],
                    sample_rate=sr,
                    target_dbfs=data["target_dbfs"],
                    seed=(seed + 7919 * r) if shuffle else seed + 1,
                    random_offset=shuffle,
                )
                for r in range(repeat if shuffle else 1)
            ]
        dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
        loaders.append(
            ResumableLoader(
                dataset,
                batch_size=int(data["batch_size"]),
                shuffle=shuffle,
                seed=seed,
                num_workers=int(data["num_workers"]),
                drop_last=shuffle,
                persistent_workers=int(data["num_workers"]) > 0,
            )
        )
    return loaders[0], loaders[1]


def train_from_config(config: dict, resume: bool = False) -> TrainResult:
    """Train, export ``model.pt`` and write the held-out report; the run's
    :class:`~vae_audio.core.training.TrainResult` with the held-out scores in ``report``."""
    data = _data_config(config)
    task = SpeechVAETask(config)
    train_loader, valid_loader = build_loaders(config)
    result = train(task, (train_loader, valid_loader), resume=resume)
    if result.model_path is None:  # non-zero DDP rank
        return result
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
    summary = (
        f"speech prior: {result.model_path} (step {result.global_step}); held-out IS divergence "
        f"{scores.is_div_vae:.2f} nats/frame vs {scores.is_div_fixed_gain:.2f} for the "
        f"gain-adapted mean PSD; report in {result.out_dir / 'report.md'}"
    )
    report = {k: v for k, v in vars(scores).items() if isinstance(v, int | float)}
    return dataclasses.replace(result, summary=summary, report=report)
