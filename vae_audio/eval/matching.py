"""Finding the references of a simulated set and the separator's outputs that belong to them.

References. ``ref`` is a simulated set folder or one of its manifests (JSON Lines, see
:mod:`vae_audio.data.manifest`; each line has ``id``, ``mix`` and ``sources`` (a list of
paths to the reverberant speaker images), optionally ``noise``). A folder is read through
``manifest.jsonl`` (or its only ``*.jsonl``); a folder without manifest is scanned for
``<id>/mix.wav`` + ``<id>/src<k>.wav``.

Estimates. The separator writes ``EST/<name>/src1.wav ... srcN.wav`` (``noise.wav`` and other
files are ignored), or with ``--layout librimix`` ``EST/s1/<name>.wav ... EST/sN/<name>.wav``
(the layout of LibriMix and wsj0-2mix; ``EST/noise/`` is ignored). ``<name>`` is matched to a
reference by its ``id``, else by the stem of its mixture file when those stems are unique in
the set; a ``<name>/`` folder is taken before ``s<k>/<name>.wav`` files. References without
estimates are an error unless ``allow_missing``; estimates matching no reference are ignored
(and reported).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from vae_audio.errors import VaeAudioError

PathLike = str | os.PathLike

_SOURCE_FILE = re.compile(r"^src(\d+)\.(wav|flac)$")
_SLOT_FOLDER = re.compile(r"^s(\d+)$")
_SHOW = 5  # how many names an error message lists


@dataclass(frozen=True)
class Reference:
    """One mixture of a simulated set: its id and absolute paths (speaker images ``[S, M]``)."""

    id: str
    mix: Path
    sources: tuple[Path, ...]
    noise: Path | None = None


@dataclass(frozen=True)
class Estimates:
    """The estimate files of one mixture (``src1, src2, ...`` or ``s1, s2, ...`` order) and
    where they lie, for messages."""

    files: tuple[Path, ...]
    where: str


@dataclass
class Matches:
    """References paired with their estimates, and what could not be paired."""

    pairs: list[tuple[Reference, Estimates]]
    missing: list[str] = field(default_factory=list)  # reference ids without estimates
    unmatched: list[str] = field(default_factory=list)  # estimate folders without reference


def _listing(names: list[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:_SHOW])
    return shown + (f" and {len(names) - _SHOW} more" if len(names) > _SHOW else "")


def source_files(folder: Path) -> list[Path]:
    """``folder/src<k>.wav`` (or ``.flac``) files sorted by ``k``."""
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _SOURCE_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def _slot_files(est_dir: Path, folders: dict[str, Path]) -> dict[str, list[Path]]:
    """``name -> [EST/s1/<name>.wav, EST/s2/<name>.wav, ...]`` (the ``librimix`` layout)."""
    slots = sorted((int(m.group(1)), p) for n, p in folders.items() if (m := _SLOT_FOLDER.match(n)))
    found: dict[str, list[tuple[int, Path]]] = {}
    for k, folder in slots:
        for path in folder.iterdir():
            if path.suffix.lower() in (".wav", ".flac") and path.is_file():
                found.setdefault(path.stem, []).append((k, path))
    return {name: [p for _, p in sorted(files)] for name, files in found.items()}


def _from_manifest(path: Path, split: str | None) -> list[Reference]:
    from vae_audio.data.manifest import read_manifest

    refs = []
    for i, entry in enumerate(read_manifest(path, require=("sources", "mix"), split=split), 1):
        sources = entry["sources"]
        if not isinstance(sources, list) or not sources:
            raise VaeAudioError(
                f"manifest '{path}' entry {i}: 'sources' must be a non-empty list of paths; "
                "regenerate the set with `vae-audio simulate`"
            )
        ref_id = str(entry.get("id") or Path(entry["mix"]).parent.name)
        noise = Path(entry["noise"]) if entry.get("noise") else None
        refs.append(Reference(ref_id, Path(entry["mix"]), tuple(map(Path, sources)), noise))
    return refs


def _from_folders(root: Path) -> list[Reference]:
    refs = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        sources = source_files(sub)
        if (sub / "mix.wav").is_file() and sources:
            noise = sub / "noise.wav"
            refs.append(
                Reference(
                    sub.name, sub / "mix.wav", tuple(sources), noise if noise.is_file() else None
                )
            )
    return refs


def load_references(ref: PathLike, *, split: str | None = None) -> list[Reference]:
    """Read the references of a simulated set folder or manifest (see the module docstring)."""
    path = Path(ref).expanduser()
    if not path.exists():
        raise VaeAudioError(
            f"reference '{path}' does not exist; give the simulated set folder (with "
            "manifest.jsonl) or its manifest, e.g. made by `vae-audio simulate`"
        )
    if path.is_dir():
        manifests = [path / "manifest.jsonl"] if (path / "manifest.jsonl").is_file() else []
        manifests = manifests or sorted(path.glob("*.jsonl"))
        if len(manifests) > 1:
            raise VaeAudioError(
                f"reference folder '{path}' has several manifests "
                f"({_listing([m.name for m in manifests])}); pass the one to use as --ref"
            )
        refs = _from_manifest(manifests[0], split) if manifests else _from_folders(path)
    else:
        refs = _from_manifest(path, split)
    if not refs:
        raise VaeAudioError(
            f"reference '{path}' holds no mixture (no manifest and no <id>/mix.wav + "
            "<id>/src1.wav folders); point --ref at a simulated set"
        )
    ids = [r.id for r in refs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise VaeAudioError(
            f"reference '{path}' lists mixture id(s) {_listing(duplicates)} more than once; "
            "ids must be unique, fix or regenerate the manifest"
        )
    return refs


def match_estimates(
    est_dir: PathLike, refs: list[Reference], *, allow_missing: bool = False
) -> Matches:
    """Pair each reference with ``est_dir/<id>/src<k>.wav`` or ``est_dir/s<k>/<id>.wav`` (or
    the mixture's file stem for ``<id>``), see the module docstring."""
    est_dir = Path(est_dir).expanduser()
    if not est_dir.is_dir():
        what = "is a file, not a folder" if est_dir.exists() else "does not exist"
        raise VaeAudioError(
            f"estimate folder '{est_dir}' {what}; give the output folder of "
            "`vae-audio separate` (one sub-folder of src<k>.wav per mixture)"
        )
    folders = {p.name: p for p in est_dir.iterdir() if p.is_dir()}
    slot_files = _slot_files(est_dir, folders)
    stems = [r.mix.stem for r in refs]
    pairs, missing, used = [], [], set()
    for ref, stem in zip(refs, stems, strict=True):
        names = [ref.id] + ([stem] if stems.count(stem) == 1 else [])
        name = next((n for n in names if n in folders), None)
        if name is not None:
            est = Estimates(
                tuple(source_files(folders[name])), f"estimate folder '{folders[name]}'"
            )
        elif (name := next((n for n in names if n in slot_files), None)) is not None:
            est = Estimates(tuple(slot_files[name]), f"'{est_dir}/s<k>/{name}.*'")
        else:
            missing.append(ref.id)
            continue
        used.add(name)
        pairs.append((ref, est))
    if not pairs:
        raise VaeAudioError(
            f"no folder in '{est_dir}' matches a mixture id of the references (ids like "
            f"{_listing([r.id for r in refs])}; folders found: "
            f"{_listing(sorted(folders)) or 'none'}); the separator output must be "
            "EST/<id>/src<k>.wav, or EST/s<k>/<id>.wav (separate --layout librimix)"
        )
    if missing and not allow_missing:
        raise VaeAudioError(
            f"{len(missing)} of {len(refs)} mixtures have no estimate folder in '{est_dir}' "
            f"({_listing(missing)}); separate them too, or pass --allow-missing to evaluate "
            "only the mixtures present"
        )
    for _, est in pairs:
        if not est.files:
            raise VaeAudioError(
                f"{est.where} has no src1.wav ... srcN.wav; re-run the separator or remove "
                "the folder"
            )
    slot_folders = {
        n for n in folders if _SLOT_FOLDER.match(n) or n in ("noise", "separation", "spectrogram")
    }
    others = (set(folders) - slot_folders) | (set(slot_files) if slot_folders else set())
    return Matches(pairs, missing, sorted(others - used))
