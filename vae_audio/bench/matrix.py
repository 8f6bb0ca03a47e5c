"""The condition matrix: a grid of simulated conditions, every method on every cell.

``vae-audio bench --matrix recipes/bench/matrix.yaml [--full] [--seed S]`` reads a matrix
file (YAML, see ``recipes/bench/matrix.yaml`` for every key) with

* ``axes``: named levels of each condition. ``talkers`` (the talker count), ``snr`` and
  ``rt60`` (bands ``[low, high]`` drawn uniformly), ``array`` (a preset ``array`` mapping:
  circular/linear geometry, mic count), ``noise`` (a preset ``noise`` mapping: diffuse-like
  many sources or one point source) and ``speech`` (a corpus manifest and split per level:
  TTS voices, real recorded voices);
* ``design``: which cells run. ``full`` is the product of every axis; ``small`` (the
  default) a one-factor-at-a-time design: each ``bases`` cell, and each level of each axis
  in ``vary`` with the rest of its base held fixed, so every level is run and each cell
  differs from its base in one condition;
* ``mixtures_per_cell`` (``full_mixtures_per_cell`` under ``--full``), the mixtures'
  ``length`` and ``min_speech_s`` (utterances of a talker are joined until it speaks that
  long, so short prompts fill the mixture), the ``methods`` and which of them are ``peers``.

A cell whose talker count exceeds the voices of its speech corpus (e.g. three talkers of a
two-voice recorded corpus) is skipped and reported. Every cell is simulated into
``OUT/sets/<cell>`` with the seed ``(seed, cell name)`` (adding or removing cells does not
change the others; a rerun reuses finished mixtures), then every method runs on every
mixture through :func:`vae_audio.bench.runner.run_bench` with the talker outputs chosen
**blind** (no references; rules in :mod:`vae_audio.bench.methods`). Outputs: the bench's
per-file CSV and summary over all mixtures, ``matrix.md`` / ``matrix.csv`` (per cell and
method: SDR, SI-SDR, SDRi, RTF; the mean over cells, also per talker count) and
``heatmap.png`` (each method's SDR minus the best peer's, per cell).
"""

from __future__ import annotations

import itertools
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vae_audio.errors import VaeAudioError
from vae_audio.fileio import read_yaml_file

logger = logging.getLogger(__name__)

AXES = ("talkers", "snr", "rt60", "array", "noise", "speech")
DESIGNS = ("small", "full")


@dataclass(frozen=True)
class Cell:
    """One condition: the level name of each axis (``levels``), in :data:`AXES` order."""

    levels: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        """Short and unique, e.g. ``2t_10-20dB_0.3-0.5s_circle4_diffuse_tts``."""
        unit = {"talkers": "t", "snr": "dB", "rt60": "s"}
        return "_".join(f"{level}{unit.get(axis, '')}" for axis, level in self.levels)

    def level(self, axis: str) -> str:
        return dict(self.levels)[axis]


@dataclass(frozen=True)
class MatrixSpec:
    """A validated matrix file (module docstring); ``source`` is its path."""

    source: str
    seed: int
    axes: dict[str, dict[str, Any]]
    bases: tuple[dict[str, str], ...]
    vary: tuple[str, ...]
    mixtures_per_cell: int
    full_mixtures_per_cell: int
    length: tuple[float, float]
    min_speech_s: float
    methods: tuple[str, ...]
    peers: tuple[str, ...]
    reference: str
    base_preset: dict[str, Any] = field(default_factory=dict)

    def cells(self, design: str = "small") -> list[Cell]:
        """The cells of ``design`` (:data:`DESIGNS`), without duplicates, in a fixed order."""
        if design == "full":
            combos = itertools.product(*(self.axes[a] for a in AXES))
            cells = [Cell(tuple(zip(AXES, combo, strict=True))) for combo in combos]
        elif design == "small":
            cells = []
            for base in self.bases:
                cells.append(_cell(base))
                for axis in self.vary:
                    cells += [_cell({**base, axis: lvl}) for lvl in self.axes[axis]]
        else:
            raise VaeAudioError(f"unknown matrix design {design!r}; use one of {DESIGNS}")
        return list(dict.fromkeys(cells))

    def talkers(self, cell: Cell) -> int:
        return int(self.axes["talkers"][cell.level("talkers")])

    def speech(self, cell: Cell) -> dict[str, str]:
        """``{"corpus": manifest path, "split": name}`` of the cell's speech level."""
        return self.axes["speech"][cell.level("speech")]

    def preset(self, cell: Cell) -> dict[str, Any]:
        """The simulation preset of ``cell`` (merged onto the default preset)."""
        noise = dict(self.axes["noise"][cell.level("noise")])
        noise["snr_db"] = list(self.axes["snr"][cell.level("snr")])
        preset = _deep_merge(
            self.base_preset,
            {
                "length": list(self.length),
                "room": {"rt60": list(self.axes["rt60"][cell.level("rt60")])},
                "array": dict(self.axes["array"][cell.level("array")]),
                "speakers": {"count": self.talkers(cell), "min_speech_s": self.min_speech_s},
                "noise": noise,
            },
        )
        return {"name": f"matrix:{cell.name}", **preset}

    def cell_seed(self, cell: Cell, seed: int | None = None) -> int:
        """Simulation seed of ``cell``: depends on the matrix seed and the cell's name only."""
        seed = self.seed if seed is None else seed
        return zlib.crc32(f"{seed}/{cell.name}".encode())


def _cell(levels: dict[str, str]) -> Cell:
    return Cell(tuple((axis, str(levels[axis])) for axis in AXES))


def _deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _fail(path: str, key: str, msg: str) -> VaeAudioError:
    return VaeAudioError(f"matrix '{path}': '{key}' {msg}; fix the matrix file")


def _band(value, path: str, key: str) -> tuple[float, float]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        or value[0] > value[1]
    ):
        raise _fail(path, key, f"must be a band [low, high], got {value!r}")
    return (float(value[0]), float(value[1]))


def _positive_int(value, path: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(path, key, f"must be a positive integer, got {value!r}")
    return value


def load_matrix(path: str | Path, base_dir: str | Path | None = None) -> MatrixSpec:
    """Read and check a matrix file. Relative corpus paths are resolved against
    ``base_dir`` (default: the current folder, where the recipes' ``data/`` lives)."""
    from vae_audio.bench.methods import resolve_methods

    path = Path(path).expanduser()
    src = str(path)
    raw = read_yaml_file(path, "matrix")
    if not isinstance(raw, dict):
        raise VaeAudioError(
            f"matrix '{path}' must be a YAML mapping; see recipes/bench/matrix.yaml"
        )
    known = {
        "seed", "axes", "design", "mixtures_per_cell", "full_mixtures_per_cell", "length",
        "min_speech_s", "methods", "peers", "reference", "preset",
    }  # fmt: skip
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _fail(src, unknown[0], f"is not a matrix key (keys: {', '.join(sorted(known))})")
    axes_raw = raw.get("axes")
    if not isinstance(axes_raw, dict) or sorted(axes_raw) != sorted(AXES):
        raise _fail(src, "axes", f"must map each of {', '.join(AXES)} to its named levels")
    axes: dict[str, dict[str, Any]] = {}
    for axis in AXES:
        levels = axes_raw[axis]
        if not isinstance(levels, dict) or not levels:
            raise _fail(src, f"axes.{axis}", "must map level names to their values")
        axes[axis] = {}
        for name, value in levels.items():
            key = f"axes.{axis}.{name}"
            if axis == "talkers":
                value = _positive_int(value, src, key)
            elif axis in ("snr", "rt60"):
                value = _band(value, src, key)
            elif axis == "speech":
                if not isinstance(value, dict) or "corpus" not in value:
                    raise _fail(src, key, "must give {corpus: MANIFEST, split: NAME}")
                corpus = Path(value["corpus"]).expanduser()
                if not corpus.is_absolute() and base_dir is not None:
                    corpus = Path(base_dir) / corpus
                value = {"corpus": str(corpus), "split": value.get("split")}
            elif not isinstance(value, dict):
                raise _fail(src, key, "must be a preset mapping (e.g. {kind: circular, ...})")
            axes[axis][str(name)] = value
    design = raw.get("design") or {}
    bases = tuple(design.get("bases") or ())
    vary = tuple(design.get("vary") or ())
    for i, base in enumerate(bases):
        if not isinstance(base, dict) or sorted(base) != sorted(AXES):
            raise _fail(src, f"design.bases[{i}]", f"must name a level of each of {AXES}")
        for axis, level in base.items():
            if str(level) not in axes[axis]:
                raise _fail(src, f"design.bases[{i}].{axis}", f"names no level: {level!r}")
    bad = [a for a in vary if a not in AXES]
    if bad:
        raise _fail(src, "design.vary", f"names unknown axes {bad}; axes are {AXES}")
    if not bases:
        raise _fail(src, "design.bases", "must list at least one base cell")
    methods = resolve_methods(raw.get("methods") or ())
    peers = tuple(raw.get("peers") or ())
    missing = [p for p in peers if p not in methods]
    if not peers or missing:
        raise _fail(src, "peers", f"must name methods of 'methods' (missing: {missing})")
    reference = raw.get("reference", "auto")
    if reference not in methods:
        raise _fail(src, "reference", f"must be one of the methods, got {reference!r}")
    length = _band(raw.get("length", [4.0, 6.0]), src, "length")
    min_speech = raw.get("min_speech_s", 0.0)
    if isinstance(min_speech, bool) or not isinstance(min_speech, (int, float)) or min_speech < 0:
        raise _fail(src, "min_speech_s", f"must be a number >= 0, got {min_speech!r}")
    preset = raw.get("preset") or {}
    if not isinstance(preset, dict):
        raise _fail(src, "preset", "must be a preset mapping merged under every cell")
    n_small = _positive_int(raw.get("mixtures_per_cell", 2), src, "mixtures_per_cell")
    return MatrixSpec(
        source=src,
        seed=int(raw.get("seed", 0)),
        axes=axes,
        bases=tuple({a: str(b[a]) for a in AXES} for b in bases),
        vary=vary,
        mixtures_per_cell=n_small,
        full_mixtures_per_cell=_positive_int(
            raw.get("full_mixtures_per_cell", n_small), src, "full_mixtures_per_cell"
        ),
        length=length,
        min_speech_s=float(min_speech),
        methods=methods,
        peers=peers,
        reference=reference,
        base_preset=preset,
    )


@dataclass
class MatrixSets:
    """The simulated cells: ``manifest`` lists every mixture (ids ``<cell>/<id>``), ``cell_of``
    maps a mixture id to its cell, ``skipped`` the cells that could not be simulated (why)."""

    manifest: Path
    cells: list[Cell]
    cell_of: dict[str, Cell]
    skipped: dict[str, str]


def simulate_cells(
    spec: MatrixSpec,
    out: str | Path,
    cells: Sequence[Cell],
    n_per_cell: int,
    *,
    seed: int | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> MatrixSets:
    """Simulate ``n_per_cell`` mixtures of every cell into ``out/sets/<cell>`` (resumable)
    and write ``out/manifest.jsonl`` listing all of them."""
    from vae_audio.data.manifest import read_manifest, write_manifest
    from vae_audio.data.simulate_set import simulate_dataset

    out = Path(out).expanduser()
    entries, cell_of, done, skipped = [], {}, [], {}
    voices: dict[tuple[str, str | None], int] = {}
    for i, cell in enumerate(cells, 1):
        speech = spec.speech(cell)
        key = (speech["corpus"], speech["split"])
        if key not in voices:
            if not Path(speech["corpus"]).is_file():
                raise VaeAudioError(
                    f"matrix '{spec.source}': speech corpus '{speech['corpus']}' (level "
                    f"'{cell.level('speech')}') does not exist; build it first (see "
                    "recipes/bench/README.md)"
                )
            lines = read_manifest(speech["corpus"], require=("path", "speaker"), split=key[1])
            voices[key] = len({e["speaker"] for e in lines})
        if spec.talkers(cell) > voices[key]:
            skipped[cell.name] = (
                f"{spec.talkers(cell)} talkers, but the speech corpus has {voices[key]} voices"
            )
            continue
        if progress:
            logger.info("simulating cell %d/%d: %s", i, len(cells), cell.name)
        res = simulate_dataset(
            speech["corpus"], out / "sets" / cell.name, n_per_cell,
            preset=spec.preset(cell), seed=spec.cell_seed(cell, seed), jobs=jobs,
            split=speech["split"] or "train", progress=False,
        )  # fmt: skip
        for entry in read_manifest(res.manifest, require=("id", "mix"))[:n_per_cell]:
            mix_id = f"{cell.name}/{entry['id']}"
            entries.append({**entry, "id": mix_id, "cell": cell.name})
            cell_of[mix_id] = cell
        done.append(cell)
    manifest = write_manifest(out / "manifest.jsonl", entries)
    return MatrixSets(manifest, done, cell_of, skipped)
