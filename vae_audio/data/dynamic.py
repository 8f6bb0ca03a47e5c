"""Dynamic mixing: new mixtures every epoch from a clean corpus and a cached RIR bank.

The dataset does the cheap, I/O-bound part on the DataLoader workers (pick talkers and a
room, load and place utterances, make noise signals, draw levels and SNR) and yields *dry*
parts; :class:`DynamicMixer` does the convolutions on the training device
(``torchaudio.functional.fftconvolve``) and applies the level/SNR conventions of
:mod:`vae_audio.data.mixing`, so ``mix == images.sum(N) + noise`` holds on any device.
With ``render=True`` the dataset runs the mixer itself on CPU and also yields the result.

Items (dicts, collatable by the default ``collate_fn``):

* ``sources [N, S]`` dry talkers placed in the window, ``noise [K, S]`` unit-RMS dry noise
  (rows beyond the room's noise-source count are zero), ``rir_index`` (int64),
  ``level_db [N]`` (talker level relative to talker 1), ``snr_db`` (scalar), all float32;
* with ``render=True`` also ``mix [M, S]``, ``images [N, M, S]``, ``noise_image [M, S]``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from vae_audio.core.draws import current_draw
from vae_audio.data.manifest import read_manifest
from vae_audio.data.mixing import MixtureBatch, mix_images, spatialise
from vae_audio.data.noise import join_utterances, joined_length, place
from vae_audio.data.presets import load_preset
from vae_audio.data.rir_bank import RirBank
from vae_audio.data.simulate import noise_signals
from vae_audio.data.simulate_set import load_mono
from vae_audio.errors import VaeAudioError

_BABBLE_POOL = 8


class DynamicMixer(nn.Module):
    """Spatialise a batch of dry parts with the bank's RIRs (buffers follow ``.to(device)``).

    ``forward(batch)`` takes the collated dataset items (``sources [B, N, S]``,
    ``noise [B, K, S]``, ``rir_index [B]``, ``level_db [B, N]``, ``snr_db [B]``) on the
    device and returns a :class:`MixtureBatch` (``mix [B, M, S]``, ``images [B, N, M, S]``,
    ``noise [B, M, S]``, ``gain [B]``).
    """

    def __init__(self, bank: RirBank) -> None:
        super().__init__()
        self.register_buffer("rirs", bank.rirs, persistent=False)  # [R, N, M, L]
        self.register_buffer("noise_rirs", bank.noise_rirs, persistent=False)  # [R, K, M, L]
        self.speech_level_dbfs = float(bank.preset["speech_level_dbfs"])

    def forward(self, batch: dict) -> MixtureBatch:
        sources = batch["sources"]  # [B, N, S]
        index = batch["rir_index"].to(self.rirs.device)
        rirs = self.rirs[index, : sources.shape[1]]  # [B, N, M, L]
        images = spatialise(sources, rirs.to(sources.device))  # [B, N, M, S]
        noise = None
        if self.noise_rirs.shape[1] > 0:
            noise_rirs = self.noise_rirs[index].to(sources.device)  # [B, K, M, L]
            noise = spatialise(batch["noise"], noise_rirs).sum(dim=1)  # [B, M, S]
        return mix_images(images, noise, batch["level_db"], batch["snr_db"], self.speech_level_dbfs)


class DynamicMixingDataset(Dataset):
    """``epoch_size`` fresh mixtures of ``n_speakers`` distinct corpus speakers per epoch.

    ``seed=None`` draws new mixtures every epoch under the training loader
    (:class:`~vae_audio.core.loader.ResumableLoader`), from
    ``numpy.random.default_rng([loader seed, epoch, index])``: the same in every run, worker
    and restart; read directly (or through a plain ``DataLoader``) it draws from fresh OS
    entropy on every access. An integer makes item ``i`` always the same mixture,
    ``default_rng([seed, i])`` (use it for validation). ``segment_seconds`` sets S; SNR, level
    and noise-kind ranges come from the bank's preset, and so does ``speakers.min_speech_s``:
    a talker's utterances are joined (0.2 s apart) until it speaks that long, so that a
    corpus of short recorded prompts fills the window (build the bank with such a preset,
    e.g. ``vae-audio rir-bank ... --preset recipes/bench/real10.yaml``).
    """

    def __init__(
        self,
        corpus: str | Path,
        bank: RirBank | str | Path,
        *,
        segment_seconds: float = 4.0,
        n_speakers: int | None = None,
        epoch_size: int = 10000,
        split: str | None = "train",
        render: bool = False,
        seed: int | None = None,
    ) -> None:
        self.bank = bank if isinstance(bank, RirBank) else RirBank.load(bank)
        self.preset = load_preset(self.bank.preset)
        self.sr = self.bank.sample_rate
        n_max = self.bank.rirs.shape[1]
        self.n_speakers = n_max if n_speakers is None else int(n_speakers)
        if not 1 <= self.n_speakers <= n_max:
            raise VaeAudioError(
                f"n_speakers must be 1..{n_max} (the bank's talker positions per "
                f"room), got {n_speakers}; rebuild the bank with more talkers"
            )
        by_speaker = defaultdict(list)
        for e in read_manifest(corpus, require=("path", "speaker"), split=split):
            by_speaker[e["speaker"]].append(e["path"])
        self.speakers = sorted(by_speaker)
        self.by_speaker = dict(by_speaker)
        if len(self.speakers) < self.n_speakers + (self.preset.noise.kind in ("babble", "mixed")):
            raise VaeAudioError(
                f"corpus '{corpus}' has too few speakers ({len(self.speakers)}) "
                f"for {self.n_speakers} distinct talkers (plus babble)"
            )
        self.n_samples = int(round(segment_seconds * self.sr))
        self.epoch_size, self.render, self.seed = int(epoch_size), render, seed
        self._mixer = DynamicMixer(self.bank) if render else None

    def __len__(self) -> int:
        return self.epoch_size

    @property
    def talker_counts(self) -> tuple[int, ...]:
        """The talker counts of the mixtures (one: ``n_speakers``)."""
        return (self.n_speakers,)

    def _generator(self, index: int) -> np.random.Generator:
        if self.seed is not None:
            return np.random.default_rng([self.seed, index])
        key = current_draw()
        if key is None:
            return np.random.default_rng()
        return np.random.default_rng([key.seed, key.epoch, key.index])

    def _utterance(self, speaker: int, rng: np.random.Generator) -> np.ndarray:
        paths = self.by_speaker[self.speakers[speaker]]
        return load_mono(paths[int(rng.integers(len(paths)))], self.sr)

    def _talker(self, speaker: int, rng: np.random.Generator) -> np.ndarray:
        """One utterance, or with ``speakers.min_speech_s`` > 0 in the bank's preset, further
        utterances of the same speaker joined until it speaks that long (as ``simulate``)."""
        parts = [self._utterance(speaker, rng)]
        while joined_length(parts, self.sr) < self.preset.speakers.min_speech_s * self.sr:
            parts.append(self._utterance(speaker, rng))
        return join_utterances(parts, self.sr)

    def __getitem__(self, index: int) -> dict:
        rng = self._generator(index)
        talkers = rng.choice(len(self.speakers), self.n_speakers, replace=False)
        sources = np.stack([place(self._talker(k, rng), self.n_samples, rng)[0] for k in talkers])
        room = int(rng.integers(len(self.bank)))
        n_noise, k_max = int(self.bank.n_noise[room]), self.bank.noise_rirs.shape[1]
        pool = []
        if self.preset.noise.kind in ("babble", "mixed"):
            others = np.setdiff1d(np.arange(len(self.speakers)), talkers)
            pool = [self._utterance(int(rng.choice(others)), rng) for _ in range(_BABBLE_POOL)]
        noise = np.zeros((k_max, self.n_samples))
        if n_noise:
            noise[:n_noise], _ = noise_signals(
                self.preset.noise.kind,
                n_noise,
                self.n_samples,
                rng,
                pool,
                self.preset.noise.babble_talkers,
            )
        level = np.concatenate(
            [[0.0], rng.uniform(*self.preset.speakers.level_db, len(talkers) - 1)]
        )
        item = {
            "sources": torch.as_tensor(sources, dtype=torch.float32),  # [N, S]
            "noise": torch.as_tensor(noise, dtype=torch.float32),  # [K, S]
            "rir_index": torch.tensor(room, dtype=torch.int64),
            "level_db": torch.as_tensor(level, dtype=torch.float32),  # [N]
            "snr_db": torch.tensor(rng.uniform(*self.preset.noise.snr_db), dtype=torch.float32),
        }
        if self.render:
            batch = {k: v.unsqueeze(0) for k, v in item.items()}  # add B = 1
            with torch.no_grad():
                out = self._mixer(batch)
            item.update(mix=out.mix[0], images=out.images[0], noise_image=out.noise[0])
        return item
