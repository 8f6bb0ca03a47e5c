"""Inputs of ``vae-audio separate``: discovery, output names, rank sharding, validation.

An input argument is an audio file, a folder (searched recursively for
:data:`AUDIO_SUFFIXES`; files under the output folder and hidden files are left out) or a
JSON Lines manifest (``.jsonl``): a simulated set's manifest (``mix`` field, ``id`` names the
output folder, so ``vae-audio evaluate`` pairs them) or a corpus manifest (``path`` field).
A file given twice is separated once.

**Output names.** Each input gets the folder ``OUTDIR/<name>``: the manifest ``id`` if any,
else the file stem. Names that collide are prefixed with their parent folders
(``a/mix.wav``, ``b/mix.wav`` -> ``a_mix``, ``b_mix``), the fewest needed to tell them apart,
then numbered in input order if still equal; the names depend only on the whole input list,
so every rank of a sharded job computes the same ones.

**Sharding.** Under ``torchrun`` (``RANK``/``WORLD_SIZE``) or SLURM
(``SLURM_PROCID``/``SLURM_NTASKS``) rank ``r`` of ``W`` takes ``inputs[r::W]``;
``LOCAL_RANK`` (or ``SLURM_LOCALID``) picks the CUDA device.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vae_audio.errors import VaeAudioError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
_UNSAFE = re.compile(r"[^\w.+-]+")


@dataclass
class InputItem:
    """One mixture to separate: its file, output folder name, and header facts once probed
    (``channels``, ``frames``, ``sample_rate`` in Hz)."""

    path: Path
    key: str  # preferred output name (manifest id or file stem) before disambiguation
    name: str = ""
    channels: int = 0
    frames: int = 0
    sample_rate: int = 0
    missing_frames: int = 0  # a truncated WAV's frames declared in its header but absent

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._") or "input"


def _is_under(path: Path, folder: Path | None) -> bool:
    return folder is not None and (path == folder or folder in path.parents)


def _from_folder(folder: Path, exclude: Path | None) -> list[InputItem]:
    found = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and not _is_under(p.resolve(), exclude)
    )
    if not found:
        raise VaeAudioError(
            f"input folder '{folder}' holds no audio file ({', '.join(AUDIO_SUFFIXES)}) outside "
            "the output folder; give files, a folder of recordings or a .jsonl manifest"
        )
    return [InputItem(p.resolve(), p.stem) for p in found]


def _from_manifest(path: Path) -> list[InputItem]:
    from vae_audio.data.manifest import read_manifest

    items = []
    for lineno, entry in enumerate(read_manifest(path, require=()), start=1):
        audio = entry.get("mix", entry.get("path"))
        if not isinstance(audio, str):
            raise VaeAudioError(
                f"manifest '{path}' entry {lineno} has no 'mix' (simulated set) or 'path' "
                "(corpus) field naming an audio file; give a manifest made by `vae-audio "
                "simulate` or `vae-audio corpus`"
            )
        audio_path = Path(audio).resolve()
        key = str(entry["id"]) if entry.get("id") not in (None, "") else audio_path.stem
        items.append(InputItem(audio_path, key))
    return items


def collect_inputs(
    specs: Sequence[str | os.PathLike], exclude: Path | None = None
) -> list[InputItem]:
    """Expand the input arguments into unique :class:`InputItem` s with output names.

    ``exclude``: a folder whose files are never inputs (the output folder).
    """
    if not specs:
        raise VaeAudioError("no input given; pass audio files, folders or a .jsonl manifest")
    exclude = exclude.expanduser().resolve() if exclude is not None else None
    items: list[InputItem] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if not path.exists():
            raise VaeAudioError(
                f"input '{path}' does not exist; check the path (inputs are audio files, "
                "folders of them or a .jsonl manifest)"
            )
        if path.is_dir():
            items += _from_folder(path, exclude)
        elif path.suffix.lower() == ".jsonl":
            items += _from_manifest(path)
        else:
            items.append(InputItem(path.resolve(), path.stem))
    seen, unique = set(), []
    for item in items:
        if item.path not in seen:
            seen.add(item.path)
            unique.append(item)
    assign_names(unique)
    return unique


def assign_names(items: Sequence[InputItem]) -> None:
    """Give every item a unique, filesystem-safe ``name`` (module docstring, "Output names").

    Each round, the items of a group sharing a name take one more parent folder, except the
    group's single least-prefixed item if there is one (so ``x/sub_a.wav`` keeps ``sub_a``
    when ``x/sub/a.wav`` becomes ``sub_a`` first); what still clashes is numbered.
    """
    depth = [0] * len(items)

    def name_of(k: int) -> str:
        parents = items[k].path.parent.parts[len(items[k].path.parent.parts) - depth[k] :]
        return _safe("_".join([*parents, items[k].key]))

    names = [name_of(k) for k in range(len(items))]
    while True:
        groups = defaultdict(list)
        for k, name in enumerate(names):
            groups[name].append(k)
        moved = False
        for ks in (ks for ks in groups.values() if len(ks) > 1):
            least = min(depth[k] for k in ks)
            keep = [k for k in ks if depth[k] == least]
            for k in ks:
                if (len(keep) > 1 or k not in keep) and depth[k] < len(items[k].path.parent.parts):
                    depth[k] += 1
                    names[k] = name_of(k)
                    moved = True
        if not moved:
            break
    counts: dict[str, int] = defaultdict(int)
    for item, name in zip(items, names, strict=True):
        counts[name] += 1
        item.name = name if counts[name] == 1 else f"{name}-{counts[name]}"


def distributed_env(env: Mapping[str, str] | None = None) -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun or SLURM variables, else ``(0, 1, 0)``."""
    env = os.environ if env is None else env
    for rank_var, world_var, local_var in (
        ("RANK", "WORLD_SIZE", "LOCAL_RANK"),
        ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
    ):
        if rank_var in env and world_var in env:
            values = []
            for var in (rank_var, world_var, local_var):
                text = env.get(var, "0")
                try:
                    values.append(int(text))
                except ValueError:
                    raise VaeAudioError(
                        f"environment variable {var}={text!r} is not an integer; unset it or "
                        "launch with torchrun/srun"
                    ) from None
            rank, world, local = values
            if world < 1 or not 0 <= rank < world or local < 0:
                raise VaeAudioError(
                    f"{rank_var}={rank} and {world_var}={world} do not describe a rank of a "
                    "job (need 0 <= rank < world size); fix the launcher settings"
                )
            return rank, world, local
    return 0, 1, 0


def shard(items: Sequence[InputItem], rank: int, world: int) -> list[InputItem]:
    """The items of rank ``rank`` of ``world``: ``items[rank::world]``."""
    return list(items[rank::world])


def probe(item: InputItem) -> None:
    """Fill in the header facts of ``item``; raise a one-line error naming the file if it is
    missing, not audio or empty."""
    from vae_audio.audio.io import audio_info

    info = audio_info(item.path)
    item.channels, item.frames, item.sample_rate = info.channels, info.frames, info.sample_rate
    item.missing_frames = info.missing_frames


def check_samples(item: InputItem, sr: int | None):
    """Read ``item`` (at ``sr`` Hz if given) and return ``[M, S]``; raises on NaN/Inf."""
    from vae_audio.audio.io import load_audio

    wav, _ = load_audio(item.path, sr=sr)  # [M, S]
    return wav
