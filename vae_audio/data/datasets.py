"""Torch datasets over manifests: clean-speech segments and simulated mixtures.

Random crops are drawn from ``numpy.random.default_rng([seed, epoch, index])``
(:func:`vae_audio.core.draws.epoch_rng`): a new crop every epoch under the training loader
(:class:`~vae_audio.core.loader.ResumableLoader`), the same in every run, worker and restart;
epoch 0's crop when an item is read directly. Fixed crops (``random_offset=False`` /
``random_crop=False``) are for validation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from vae_audio.audio.io import load_audio, resample
from vae_audio.core.draws import epoch_rng
from vae_audio.data.levels import normalise_rms
from vae_audio.data.manifest import read_manifest
from vae_audio.errors import VaeAudioError


def _crop_start(total: int, length: int, rng: np.random.Generator | None) -> int:
    """Start of a ``length``-sample crop of ``total`` samples: random with ``rng``, else 0."""
    if total <= length or rng is None:
        return 0
    return int(rng.integers(total - length + 1))


def _fit(wav: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad ``[..., S']`` at the end (or cut) to ``[..., length]``."""
    if wav.shape[-1] >= length:
        return wav[..., :length]
    return torch.nn.functional.pad(wav, (0, length - wav.shape[-1]))


class SpeechSegmentDataset(Dataset):
    """Clean single-channel speech for training a speech prior: item ``i`` is one segment of
    utterance ``i``, a float32 tensor ``[S]`` with ``S = round(segment_seconds * sample_rate)``
    (utterances shorter than that are zero-padded at the end), or the whole utterance when
    ``segment_seconds`` is None.

    Each utterance is resampled to ``sample_rate`` Hz, averaged to mono and, when
    ``target_dbfs`` is set, scaled as a whole to that RMS level (before cropping, so the
    segments of one utterance keep their natural loudness differences). Offsets: with
    ``random_offset`` a new offset every epoch, drawn from ``(seed, epoch, index)`` (module
    docstring); without it a fixed offset per utterance drawn from ``seed`` (for validation).
    Utterances shorter than ``min_seconds`` are dropped.
    """

    def __init__(
        self,
        manifest: str | Path,
        segment_seconds: float | None = 2.0,
        sample_rate: int = 16000,
        *,
        target_dbfs: float | None = -25.0,
        random_offset: bool = True,
        seed: int = 0,
        split: str | None = None,
        min_seconds: float = 0.0,
    ) -> None:
        entries = read_manifest(manifest, require=("path",), split=split)
        self.entries = [e for e in entries if float(e.get("duration", 1e9)) >= min_seconds]
        if not self.entries:
            raise VaeAudioError(
                f"no utterance in '{manifest}' lasts {min_seconds} s or more; lower min_seconds"
            )
        self.sample_rate, self.target_dbfs = sample_rate, target_dbfs
        self.random_offset, self.seed = random_offset, seed
        self.n_samples = (
            None if segment_seconds is None else int(round(segment_seconds * sample_rate))
        )

    def __len__(self) -> int:
        return len(self.entries)

    def _offset(self, index: int, total: int) -> int:
        if total <= self.n_samples:
            return 0
        if not self.random_offset:
            return int(
                np.random.default_rng([self.seed, index]).integers(total - self.n_samples + 1)
            )
        return _crop_start(total, self.n_samples, epoch_rng(self.seed, index))

    def __getitem__(self, index: int) -> torch.Tensor:
        wav, _ = load_audio(self.entries[index]["path"], sr=self.sample_rate)  # [C, S']
        wav = wav.mean(dim=0)  # [S']
        if self.target_dbfs is not None:
            wav = normalise_rms(wav, self.target_dbfs)
        if self.n_samples is None:
            return wav
        start = self._offset(index, wav.shape[-1])
        return _fit(wav[start:], self.n_samples)  # [S]


def _read_chunk(path: str, start: int, stop: int) -> torch.Tensor:
    """Samples ``[start, stop)`` of a file as ``[M, stop - start]`` float32."""
    try:
        data = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)[0]
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise VaeAudioError(f"cannot read '{path}' ({exc}); re-run `vae-audio simulate`") from exc
    return torch.from_numpy(data.T.copy())  # [M, S]


class MixtureDataset(Dataset):
    """Chunks of a simulated set (``OUT/manifest.jsonl`` of ``vae-audio simulate``).

    Item ``i`` is a dict with ``mix [M, S]`` float32 and ``id`` (str); with
    ``with_sources=True`` also ``sources [N, M, S]`` (reverberant talker images) and
    ``noise [M, S]``, cut at the same samples, so ``mix == sources.sum(0) + noise``.
    ``S = round(segment_seconds * sr)`` (mixtures shorter than that are zero-padded), or the
    whole mixture when ``segment_seconds`` is None. Batching needs equal N across items.
    With ``random_crop`` the crop start is drawn from ``(seed, epoch, index)`` (module
    docstring), else the crop starts at 0.
    """

    def __init__(
        self,
        manifest: str | Path,
        segment_seconds: float | None = 4.0,
        *,
        sr: int | None = None,
        split: str | None = None,
        with_sources: bool = False,
        random_crop: bool = True,
        seed: int = 0,
    ) -> None:
        self.entries = read_manifest(manifest, require=("mix", "sources", "noise"), split=split)
        rates = {int(e["sample_rate"]) for e in self.entries}
        self.file_sr = rates.pop() if len(rates) == 1 else None
        if self.file_sr is None:
            raise VaeAudioError(f"'{manifest}' mixes sample rates; simulate one set per rate")
        self.sr = sr or self.file_sr
        self.with_sources, self.random_crop, self.seed = with_sources, random_crop, seed
        self.segment_seconds = segment_seconds

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict:
        e = self.entries[index]
        total = int(round(float(e["duration"]) * self.file_sr))
        if self.segment_seconds is None:
            start, stop = 0, total
        else:
            length = int(round(self.segment_seconds * self.file_sr))
            rng = epoch_rng(self.seed, index) if self.random_crop else None
            start = _crop_start(total, length, rng)
            stop = start + min(length, total)
        paths = [e["mix"]] + (e["sources"] + [e["noise"]] if self.with_sources else [])
        chunks = [_read_chunk(p, start, stop) for p in paths]  # each [M, S']
        if self.sr != self.file_sr:
            chunks = [resample(c, self.file_sr, self.sr) for c in chunks]
        if self.segment_seconds is not None:
            n = int(round(self.segment_seconds * self.sr))
            chunks = [_fit(c, n) for c in chunks]
        item = {"mix": chunks[0], "id": e["id"]}
        if self.with_sources:
            item["sources"] = torch.stack(chunks[1:-1])  # [N, M, S]
            item["noise"] = chunks[-1]
        return item
