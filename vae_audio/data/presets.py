"""Room-simulation presets: YAML files validated into frozen dataclasses.

``presets/default.yaml`` documents every key. A user preset (any YAML path) is merged onto
the default, so it only lists what it changes; unknown keys, wrong types, empty ranges and
impossible geometry raise :class:`VaeAudioError` naming the file and the key.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from vae_audio.errors import VaeAudioError
from vae_audio.fileio import read_yaml_file

PRESET_DIR = Path(__file__).parent / "presets"
NOISE_KINDS = ("pink", "white", "babble", "mixed", "none")
ARRAY_KINDS = ("circular", "linear", "custom")

Range = tuple[float, float]


@dataclass(frozen=True)
class RoomPreset:
    size_xy: Range
    height: Range
    rt60: Range
    max_order_scale: float
    max_order: int | None


@dataclass(frozen=True)
class ArrayPreset:
    kind: str
    n_mics: int
    radius: float
    spacing: float
    offsets: tuple[tuple[float, float, float], ...] | None
    height: Range
    wall_margin: float
    random_rotation: bool


@dataclass(frozen=True)
class SpeakerPreset:
    count: tuple[int, int]
    distance: Range
    min_separation_deg: float
    height: Range
    wall_margin: float
    level_db: Range
    min_speech_s: float


@dataclass(frozen=True)
class NoisePreset:
    kind: str
    n_sources: tuple[int, int]
    snr_db: Range
    babble_talkers: tuple[int, int]
    wall_margin: float
    min_distance: float


@dataclass(frozen=True)
class SimulationPreset:
    """A validated preset; ``name`` is ``default`` or the YAML path it came from."""

    name: str
    sample_rate: int
    length: Range
    speech_level_dbfs: float
    room: RoomPreset
    array: ArrayPreset
    speakers: SpeakerPreset
    noise: NoisePreset

    def to_dict(self) -> dict:
        """Plain dict (lists, no tuples) for JSON/YAML metadata and settings records."""
        return _plain(asdict(self))


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _merge(base: dict, override: dict, where: str, src: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in base:
            raise VaeAudioError(
                f"preset '{src}': unknown key '{where}{key}'; allowed keys here are "
                f"{sorted(base)} (see {PRESET_DIR / 'default.yaml'})"
            )
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise VaeAudioError(f"preset '{src}': '{where}{key}' must be a mapping")
            out[key] = _merge(base[key], value, f"{where}{key}.", src)
        else:
            out[key] = value
    return out


class _Checker:
    def __init__(self, src: str) -> None:
        self.src = src

    def fail(self, key: str, msg: str) -> VaeAudioError:
        return VaeAudioError(f"preset '{self.src}': '{key}' {msg}; fix the preset file")

    def number(self, v, key: str, lo=-math.inf, hi=math.inf, integer=False) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(key, f"must be a number, got {v!r}")
        if integer and int(v) != v:
            raise self.fail(key, f"must be an integer, got {v!r}")
        if not lo <= v <= hi:
            raise self.fail(key, f"must be in [{lo}, {hi}], got {v!r}")
        return int(v) if integer else float(v)

    def flag(self, v, key: str) -> bool:
        if not isinstance(v, bool):
            raise self.fail(key, f"must be true or false, got {v!r}")
        return v

    def range(self, v, key: str, lo=-math.inf, hi=math.inf, integer=False) -> tuple:
        pair = [v, v] if not isinstance(v, (list, tuple)) else list(v)
        if len(pair) != 2:
            raise self.fail(key, f"must be a number or [low, high], got {v!r}")
        a, b = (self.number(x, key, lo, hi, integer) for x in pair)
        if a > b:
            raise self.fail(key, f"has low > high ({a} > {b})")
        return (a, b)


def _build(d: dict, src: str) -> SimulationPreset:
    c = _Checker(src)
    r, a, s, n = d["room"], d["array"], d["speakers"], d["noise"]
    room = RoomPreset(
        size_xy=c.range(r["size_xy"], "room.size_xy", 1.0, 100.0),
        height=c.range(r["height"], "room.height", 1.5, 30.0),
        rt60=c.range(r["rt60"], "room.rt60", 0.05, 3.0),
        max_order_scale=c.number(r["max_order_scale"], "room.max_order_scale", 0.05, 2.0),
        max_order=None
        if r["max_order"] is None
        else c.number(r["max_order"], "room.max_order", 0, 200, True),
    )
    if a["kind"] not in ARRAY_KINDS:
        raise c.fail("array.kind", f"must be one of {ARRAY_KINDS}, got {a['kind']!r}")
    offsets = None
    if a["kind"] == "custom":
        off = a["offsets"]
        if not isinstance(off, list) or not all(isinstance(o, list) and len(o) == 3 for o in off):
            raise c.fail(
                "array.offsets", "must be a list of [x, y, z] metre offsets for a custom array"
            )
        offsets = tuple(tuple(c.number(x, "array.offsets", -2.0, 2.0) for x in o) for o in off)
    n_mics = len(offsets) if offsets else c.number(a["n_mics"], "array.n_mics", 2, 8, True)
    if not 2 <= n_mics <= 8:
        raise c.fail("array.offsets", f"must list 2-8 microphones, got {n_mics}")
    array = ArrayPreset(
        kind=a["kind"],
        n_mics=n_mics,
        radius=c.number(a["radius"], "array.radius", 0.005, 1.0),
        spacing=c.number(a["spacing"], "array.spacing", 0.001, 1.0),
        offsets=offsets,
        height=c.range(a["height"], "array.height", 0.1, 30.0),
        wall_margin=c.number(a["wall_margin"], "array.wall_margin", 0.05, 50.0),
        random_rotation=c.flag(a["random_rotation"], "array.random_rotation"),
    )
    if array_extent(array) + 0.05 > array.wall_margin:
        raise c.fail(
            "array.wall_margin",
            f"must exceed the array's extent "
            f"({array_extent(array):.2f} m) by 5 cm so every mic is inside the room",
        )
    speakers = SpeakerPreset(
        count=c.range(s["count"], "speakers.count", 1, 4, True),
        distance=c.range(s["distance"], "speakers.distance", 0.1, 50.0),
        min_separation_deg=c.number(s["min_separation_deg"], "speakers.min_separation_deg", 0, 120),
        height=c.range(s["height"], "speakers.height", 0.1, 30.0),
        wall_margin=c.number(s["wall_margin"], "speakers.wall_margin", 0.05, 50.0),
        level_db=c.range(s["level_db"], "speakers.level_db", -40.0, 40.0),
        min_speech_s=c.number(s["min_speech_s"], "speakers.min_speech_s", 0.0, 600.0),
    )
    if n["kind"] not in NOISE_KINDS:
        raise c.fail("noise.kind", f"must be one of {NOISE_KINDS}, got {n['kind']!r}")
    noise = NoisePreset(
        kind=n["kind"],
        n_sources=c.range(n["n_sources"], "noise.n_sources", 1, 256, True),
        snr_db=c.range(n["snr_db"], "noise.snr_db", -30.0, 80.0),
        babble_talkers=c.range(n["babble_talkers"], "noise.babble_talkers", 1, 32, True),
        wall_margin=c.number(n["wall_margin"], "noise.wall_margin", 0.01, 50.0),
        min_distance=c.number(n["min_distance"], "noise.min_distance", 0.0, 50.0),
    )
    return SimulationPreset(
        name=src,
        sample_rate=c.number(d["sample_rate"], "sample_rate", 4000, 192000, True),
        length=c.range(d["length"], "length", 0.1, 600.0),
        speech_level_dbfs=c.number(d["speech_level_dbfs"], "speech_level_dbfs", -80.0, -1.0),
        room=room,
        array=array,
        speakers=speakers,
        noise=noise,
    )


def array_extent(array: ArrayPreset) -> float:
    """Largest horizontal distance of a microphone from the array centre, metres."""
    if array.kind == "circular":
        return array.radius
    if array.kind == "linear":
        return array.spacing * (array.n_mics - 1) / 2
    return max(math.hypot(x, y) for x, y, _ in array.offsets)


def _read_yaml(path: Path) -> dict:
    data = read_yaml_file(path, "preset")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise VaeAudioError(f"preset '{path}' must be a YAML mapping of keys to values")
    return data


def load_preset(preset: str | Path | dict | SimulationPreset = "default") -> SimulationPreset:
    """Resolve ``default`` (or another name in ``presets/``), a YAML path, or a dict."""
    if isinstance(preset, SimulationPreset):
        return preset
    base = _read_yaml(PRESET_DIR / "default.yaml")
    if isinstance(preset, dict):
        src, override = str(preset.get("name", "<dict>")), preset
    else:
        path = Path(preset).expanduser()
        named = PRESET_DIR / f"{preset}.yaml"
        if not path.suffix and named.is_file():
            path = named
        elif not path.is_file():
            names = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
            raise VaeAudioError(
                f"preset '{preset}' is neither a built-in preset ({', '.join(names)}) nor "
                "an existing YAML file; give one of those names or a path"
            )
        src, override = (
            ("default" if path == PRESET_DIR / "default.yaml" else str(path)),
            _read_yaml(path),
        )
    override = {k: v for k, v in override.items() if k != "name"}
    return _build(_merge(base, override, "", src), src)
