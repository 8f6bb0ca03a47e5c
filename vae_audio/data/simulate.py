"""Simulate one reverberant, noisy multichannel mixture from dry utterances.

Pipeline (all randomness from one ``numpy.random.Generator``, in this order): room geometry
and RIRs (:func:`sample_rirs`), window length, placement of each talker in the window
(random crop or random start, :func:`place`), noise source signals (pink, white, babble or
a per-source mix of pink and babble), talker levels and SNR, then the level conventions of
:mod:`vae_audio.data.mixing` (talker k relative to talker 1, summed speech at
``speech_level_dbfs``, SNR on mic 0, one clip-guard gain).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vae_audio.data.mixing import mix_images, spatialise
from vae_audio.data.noise import babble, pink_noise, place, white_noise
from vae_audio.data.presets import SimulationPreset, load_preset
from vae_audio.data.rirs import sample_rirs
from vae_audio.errors import VaeAudioError


@dataclass
class SimulatedMixture:
    """float32 arrays ``mix [M, S]``, ``images [N, M, S]``, ``noise [M, S]`` (mix is
    ``images.sum(0) + noise`` in float32) and JSON-ready ``meta``."""

    mix: np.ndarray
    images: np.ndarray
    noise: np.ndarray
    meta: dict


def noise_signals(
    kind: str,
    n_sources: int,
    n_samples: int,
    rng: np.random.Generator,
    babble_pool: Sequence[np.ndarray] = (),
    talkers: tuple[int, int] = (3, 6),
) -> tuple[np.ndarray, list[str]]:
    """Dry noise-source signals ``[K, S]`` (unit RMS) and the kind of each source."""
    if kind in ("babble", "mixed") and not babble_pool:
        raise VaeAudioError(
            f"noise kind '{kind}' needs utterances for babble; pass a corpus with more "
            "speakers than talkers per mixture, or set noise.kind: pink in the preset"
        )
    if kind == "white":
        return white_noise(n_sources, n_samples, rng), ["white"] * n_sources
    if kind == "pink":
        return pink_noise(n_sources, n_samples, rng), ["pink"] * n_sources
    kinds = [
        "babble" if kind == "babble" or rng.random() < 0.5 else "pink" for _ in range(n_sources)
    ]
    signals = pink_noise(n_sources, n_samples, rng)  # [K, S]; babble rows replaced below
    for k, source_kind in enumerate(kinds):
        if source_kind == "babble":
            n_talk = int(rng.integers(talkers[0], talkers[1] + 1))
            pick = rng.choice(len(babble_pool), n_talk, replace=n_talk > len(babble_pool))
            signals[k] = babble([babble_pool[i] for i in pick], n_samples, rng)
    return signals, kinds


def simulate_mixture(
    sources: Sequence[np.ndarray],
    preset: SimulationPreset | str,
    rng: np.random.Generator,
    babble_pool: Sequence[np.ndarray] = (),
) -> SimulatedMixture:
    """Place the dry talkers ``sources`` (each ``[S_k]`` at the preset's rate) in a random
    room and return the mixture, the talkers' reverberant images and the noise image."""
    preset = load_preset(preset)
    if not 1 <= len(sources) <= 4:
        raise VaeAudioError(f"simulate_mixture needs 1-4 talkers, got {len(sources)}")
    rir = sample_rirs(preset, rng, n_speakers=len(sources))
    sr = preset.sample_rate
    n_samples = int(round(rng.uniform(*preset.length) * sr))
    placed = [place(np.asarray(s, dtype=np.float64), n_samples, rng) for s in sources]
    dry = np.stack([p[0] for p in placed])  # [N, S]
    n_noise = len(rir.noise_rirs)
    noise_dry, kinds = noise_signals(
        preset.noise.kind, n_noise, n_samples, rng, babble_pool, preset.noise.babble_talkers
    )
    level_db = np.concatenate([[0.0], rng.uniform(*preset.speakers.level_db, len(sources) - 1)])
    snr_db = float(rng.uniform(*preset.noise.snr_db))
    to_t = lambda a: torch.as_tensor(a, dtype=torch.float32)[None]  # noqa: E731  [1, ...]
    images = spatialise(to_t(dry), to_t(rir.rirs))  # [1, N, M, S]
    noise_image = None
    if n_noise:
        noise_image = spatialise(to_t(noise_dry), to_t(rir.noise_rirs)).sum(dim=1)  # [1, M, S]
    out = mix_images(
        images, noise_image, to_t(level_db), torch.tensor([snr_db]), preset.speech_level_dbfs
    )
    meta = {
        **rir.meta,
        "length_s": n_samples / sr,
        "n_samples": n_samples,
        "speech_level_dbfs": preset.speech_level_dbfs,
        "talker_offsets": [p[1] for p in placed],
        "level_db": np.round(level_db, 4).tolist(),
        "snr_db": round(snr_db, 4) if n_noise else None,
        "noise_kind": preset.noise.kind,
        "noise_source_kinds": kinds,
        "gain": float(out.gain[0]),
    }
    return SimulatedMixture(
        mix=out.mix[0].numpy(), images=out.images[0].numpy(), noise=out.noise[0].numpy(), meta=meta
    )
