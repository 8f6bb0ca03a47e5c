"""Room impulse responses by the image-source method (pyroomacoustics ``ShoeBox``).

Walls share one energy absorption coefficient and the image order from
``pra.inverse_sabine(rt60, room_dim)`` (Sabine's formula, RT60 = 0.161 V / (S a)).
RIRs include pyroomacoustics' fractional-delay filter (a 40-sample bulk delay at any rate)
and are cut where the remaining tail energy of every RIR is 60 dB below its total (the
Schroeder decay of Schroeder 1965 reaching -60 dB), which drops only inaudible tail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyroomacoustics as pra

from vae_audio.data.presets import SimulationPreset, load_preset
from vae_audio.data.scene import Scene, sample_scene

TAIL_DB = 60.0
_SOURCES_PER_ROOM = 2


@dataclass(frozen=True)
class RirSet:
    """RIRs of one room: ``rirs [N, M, L]`` (talkers) and ``noise_rirs [K, M, L]`` float32."""

    rirs: np.ndarray
    noise_rirs: np.ndarray
    scene: Scene
    sample_rate: int

    @property
    def meta(self) -> dict:
        return {
            **self.scene.to_meta(),
            "sample_rate": self.sample_rate,
            "rir_length": int(self.rirs.shape[-1]),
        }


def _tail_cut(rirs: np.ndarray, tail_db: float = TAIL_DB) -> int:
    """Smallest length keeping every RIR of ``[..., L]`` down to ``tail_db`` of decay."""
    energy = rirs.reshape(-1, rirs.shape[-1]).astype(np.float64) ** 2  # [R, L]
    tail = np.cumsum(energy[:, ::-1], axis=1)[:, ::-1]  # energy from sample t to the end
    keep = tail > tail[:, :1] * 10.0 ** (-tail_db / 10.0)  # [R, L]
    last = np.where(keep.any(axis=1), keep.shape[1] - np.argmax(keep[:, ::-1], axis=1), 1)
    return int(last.max())


def _room_rirs(scene: Scene, sample_rate: int, positions: np.ndarray) -> list[list[np.ndarray]]:
    """pyroomacoustics RIRs ``[source][mic]`` for some source positions of ``scene``."""
    room = pra.ShoeBox(
        scene.room_dim,
        fs=sample_rate,
        materials=pra.Material(scene.absorption),
        max_order=scene.max_order,
    )
    for pos in positions:
        room.add_source(pos)
    room.add_microphone_array(scene.mic_positions.T)  # pra wants [3, M]
    room.compute_rir()
    return [
        [room.rir[m][s] for m in range(len(scene.mic_positions))] for s in range(len(positions))
    ]


def compute_rirs(scene: Scene, sample_rate: int) -> RirSet:
    """Image-source RIRs from every talker and noise source to every microphone.

    Sources are simulated a few at a time (RIRs do not interact), which bounds the memory
    pyroomacoustics spends on image sources at high orders.
    """
    positions = np.concatenate([scene.source_positions, scene.noise_positions])  # [N + K, 3]
    rirs = []
    for start in range(0, len(positions), _SOURCES_PER_ROOM):
        rirs += _room_rirs(scene, sample_rate, positions[start : start + _SOURCES_PER_ROOM])
    length = max(len(h) for per_mic in rirs for h in per_mic)
    out = np.zeros((len(positions), len(scene.mic_positions), length), dtype=np.float32)
    for s, per_mic in enumerate(rirs):  # out: [N + K, M, L]
        for m, h in enumerate(per_mic):
            out[s, m, : len(h)] = h
    out = out[..., : _tail_cut(out)]
    n = len(scene.source_positions)
    return RirSet(rirs=out[:n], noise_rirs=out[n:], scene=scene, sample_rate=sample_rate)


def sample_rirs(
    preset: SimulationPreset | str,
    rng: np.random.Generator,
    n_speakers: int | None = None,
    n_noise: int | None = None,
) -> RirSet:
    """Draw a room from ``preset`` and compute its RIRs (for simulation or an RIR bank)."""
    preset = load_preset(preset)
    scene = sample_scene(preset, rng, n_speakers=n_speakers, n_noise=n_noise)
    return compute_rirs(scene, preset.sample_rate)
