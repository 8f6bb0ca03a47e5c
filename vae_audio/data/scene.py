"""Random room geometry for one simulated mixture (room, array, talkers, noise sources).

Coordinates are metres in the room frame (origin at a floor corner, z up). Talker distance
is horizontal distance from the array centre and azimuth is measured at the array centre,
counter-clockwise from +x. Rejection sampling: a room whose geometry cannot satisfy the
preset is redrawn, up to 200 rooms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyroomacoustics as pra

from vae_audio.data.presets import ArrayPreset, SimulationPreset
from vae_audio.errors import VaeAudioError

_ROOM_TRIES = 200
_POSITION_TRIES = 200


@dataclass(frozen=True)
class Scene:
    """Geometry and acoustics of one room; positions are ``[count, 3]`` metres."""

    room_dim: np.ndarray  # [3]
    rt60: float  # target RT60 in seconds (Sabine)
    absorption: float  # energy absorption coefficient of every wall
    max_order: int  # image-source order
    array_centre: np.ndarray  # [3]
    array_rotation_deg: float
    mic_positions: np.ndarray  # [M, 3]
    source_positions: np.ndarray  # [N, 3]
    source_azimuth_deg: np.ndarray  # [N]
    source_distance: np.ndarray  # [N] horizontal distance to the array centre
    noise_positions: np.ndarray  # [K, 3]

    def to_meta(self) -> dict:
        r = lambda a: np.round(np.asarray(a, dtype=float), 4).tolist()  # noqa: E731
        return {
            "room_dim": r(self.room_dim),
            "rt60": round(self.rt60, 4),
            "absorption": round(self.absorption, 5),
            "max_order": self.max_order,
            "array_centre": r(self.array_centre),
            "array_rotation_deg": round(self.array_rotation_deg, 3),
            "mic_positions": r(self.mic_positions),
            "source_positions": r(self.source_positions),
            "source_azimuth_deg": r(self.source_azimuth_deg),
            "source_distance": r(self.source_distance),
            "noise_positions": r(self.noise_positions),
        }


def array_offsets(array: ArrayPreset) -> np.ndarray:
    """Microphone offsets from the array centre before rotation: ``[M, 3]`` metres."""
    m = np.arange(array.n_mics)
    if array.kind == "circular":
        phi = 2 * np.pi * m / array.n_mics
        return np.stack([array.radius * np.cos(phi), array.radius * np.sin(phi), 0 * phi], 1)
    if array.kind == "linear":
        x = (m - (array.n_mics - 1) / 2) * array.spacing
        return np.stack([x, 0 * x, 0 * x], 1)
    return np.asarray(array.offsets, dtype=float)


def _uniform(rng: np.random.Generator, bounds) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _angle_gap(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def _try_scene(preset: SimulationPreset, rng: np.random.Generator, n_spk: int, n_noise: int):
    p_room, p_arr, p_spk, p_noise = preset.room, preset.array, preset.speakers, preset.noise
    dim = np.array(
        [_uniform(rng, p_room.size_xy), _uniform(rng, p_room.size_xy), _uniform(rng, p_room.height)]
    )
    if np.any(dim[:2] <= 2 * p_arr.wall_margin):
        return None
    centre = np.array(
        [
            rng.uniform(p_arr.wall_margin, dim[0] - p_arr.wall_margin),
            rng.uniform(p_arr.wall_margin, dim[1] - p_arr.wall_margin),
            _uniform(rng, p_arr.height),
        ]
    )
    offsets = array_offsets(p_arr)
    rot = _uniform(rng, (0.0, 360.0)) if p_arr.random_rotation else 0.0
    c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
    mics = centre + offsets @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])  # [M, 3]
    if np.any(mics <= 0.01) or np.any(mics >= dim - 0.01):
        return None
    positions, azimuths, distances = [], [], []
    lo, hi = np.full(3, p_spk.wall_margin), dim - p_spk.wall_margin
    for _ in range(n_spk):
        for _ in range(_POSITION_TRIES):
            az, dist = _uniform(rng, (0.0, 360.0)), _uniform(rng, p_spk.distance)
            pos = np.array(
                [
                    centre[0] + dist * math.cos(math.radians(az)),
                    centre[1] + dist * math.sin(math.radians(az)),
                    _uniform(rng, p_spk.height),
                ]
            )
            if (
                np.all(pos > lo)
                and np.all(pos < hi)
                and all(_angle_gap(az, other) >= p_spk.min_separation_deg for other in azimuths)
            ):
                break
        else:
            return None
        positions.append(pos), azimuths.append(az), distances.append(dist)
    noise = []
    lo, hi = np.full(3, p_noise.wall_margin), dim - p_noise.wall_margin
    if np.any(hi <= lo):
        return None
    for _ in range(n_noise):
        for _ in range(_POSITION_TRIES):
            pos = rng.uniform(lo, hi)
            if np.linalg.norm(pos - centre) >= p_noise.min_distance:
                break
        else:
            return None
        noise.append(pos)
    rt60 = _uniform(rng, p_room.rt60)
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dim)
    except ValueError:  # the RT60 is too short for this room (absorption > 1)
        return None
    max_order = math.ceil(p_room.max_order_scale * max_order)
    if p_room.max_order is not None:
        max_order = min(max_order, p_room.max_order)
    return Scene(
        room_dim=dim,
        rt60=rt60,
        absorption=float(absorption),
        max_order=int(max_order),
        array_centre=centre,
        array_rotation_deg=rot,
        mic_positions=mics,
        source_positions=np.array(positions).reshape(n_spk, 3),
        source_azimuth_deg=np.array(azimuths),
        source_distance=np.array(distances),
        noise_positions=np.array(noise).reshape(n_noise, 3),
    )


def sample_scene(
    preset: SimulationPreset,
    rng: np.random.Generator,
    n_speakers: int | None = None,
    n_noise: int | None = None,
) -> Scene:
    """Draw a room satisfying ``preset``; counts default to draws from the preset's ranges."""
    if n_speakers is None:
        n_speakers = int(rng.integers(preset.speakers.count[0], preset.speakers.count[1] + 1))
    if n_noise is None:
        n_noise = (
            0
            if preset.noise.kind == "none"
            else int(rng.integers(preset.noise.n_sources[0], preset.noise.n_sources[1] + 1))
        )
    for _ in range(_ROOM_TRIES):
        scene = _try_scene(preset, rng, n_speakers, n_noise)
        if scene is not None:
            return scene
    raise VaeAudioError(
        f"preset '{preset.name}' cannot place {n_speakers} talkers (distance "
        f"{preset.speakers.distance} m, >= {preset.speakers.min_separation_deg} deg apart) and "
        f"{n_noise} noise sources in {_ROOM_TRIES} random rooms; enlarge room.size_xy or "
        "reduce speakers.distance, the margins or min_separation_deg"
    )
