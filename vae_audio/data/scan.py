"""Index a folder of real recordings into a manifest (``vae-audio corpus scan``).

Every ``.wav`` / ``.flac`` below the root is classified by its path (a tree may mix layouts):

=========== ======================================================== ===================
layout      path pattern                                             speaker, text
=========== ======================================================== ===================
librispeech ``<spk>/<chapter>/<spk>-<chapter>-<utt>.flac``           spk; ``.trans.txt``
vctk        ``wav48*/p225/p225_001.wav`` or ``p225_001_mic1.flac``   p225; ``txt/p225/*.txt``
wsj0        ``si_tr_s/011/011c0201.wav`` (stem: 3-char spk + 5)      first 3 chars; none
arctic      ``cmu_us_bdl_arctic/wav/arctic_a0001.wav``               bdl; ``etc/txt.done.data``
generic     anything else                                            parent folder name
=========== ======================================================== ===================

Split: LibriSpeech ``train-*/dev-*/test-*`` and WSJ0 ``*_tr_*/*_dt_*/*_et_*`` folders give
``train/valid/test``; other files go to ``valid`` when a CRC32 hash of their path relative
to the root falls in the first ``valid_percent`` % (stable across runs and machines).

The manifest lists every file; ``NAME.train.jsonl``, ``NAME.valid.jsonl`` (and
``NAME.test.jsonl``) next to it hold each split, ready for recipe keys such as
``data.train_manifest``. Each line stores the file's own ``sample_rate``; datasets
resample on load. Files whose
rate is below ``sr`` are skipped (upsampling cannot restore the missing bandwidth), as are
unreadable files; both are counted in the summary.
"""

from __future__ import annotations

import os
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from vae_audio.audio.io import audio_info
from vae_audio.data.manifest import write_manifest
from vae_audio.errors import VaeAudioError

AUDIO_EXTENSIONS = (".wav", ".flac")
_LIBRI = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_VCTK = re.compile(r"^([ps]\d+)_(\d+)(?:_mic[12])?$")
_WSJ0 = re.compile(r"^([0-9a-z]{3})[0-9a-z]{5}$")
_ARCTIC_DIR = re.compile(r"^cmu_us_([a-z0-9]+)_arctic$")
_ARCTIC_LINE = re.compile(r'^\(\s*(\S+)\s+"(.*)"\s*\)\s*$')


@dataclass
class ScanResult:
    """Counts of a scan; ``unreadable``/``low_rate`` hold (path, reason) of skipped files."""

    manifest: Path
    n_files: int = 0
    layouts: Counter = field(default_factory=Counter)
    splits: Counter = field(default_factory=Counter)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    low_rate: list[str] = field(default_factory=list)
    hours: float = 0.0
    split_manifests: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.layouts.items())) or "none"
        splits = ", ".join(f"{k} {v}" for k, v in sorted(self.splits.items())) or "none"
        line = (
            f"scanned {self.n_files} audio files: {sum(self.layouts.values())} indexed "
            f"({kinds}; {splits}; {self.hours:.2f} h) into '{self.manifest}'; "
            f"{len(self.unreadable)} unreadable skipped, {len(self.low_rate)} below the "
            "target rate skipped"
        )
        if self.unreadable:
            line += f" (first unreadable: {self.unreadable[0][0]})"
        if self.split_manifests:
            line += "; per split: " + ", ".join(str(p) for p in self.split_manifests.values())
        return line


class _TextIndex:
    """Lazily loaded transcripts (one read per transcript file)."""

    def __init__(self) -> None:
        self._cache: dict[Path, dict[str, str]] = {}

    def _load(self, path: Path, parse) -> dict[str, str]:
        if path not in self._cache:
            table = {}
            if path.is_file():
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    item = parse(line)
                    if item:
                        table[item[0]] = item[1]
            self._cache[path] = table
        return self._cache[path]

    def librispeech(self, path: Path, spk: str, chapter: str) -> str:
        parse = lambda line: line.split(" ", 1) if " " in line else None  # noqa: E731
        return self._load(path.parent / f"{spk}-{chapter}.trans.txt", parse).get(path.stem, "")

    def arctic(self, voice_dir: Path, utt: str) -> str:
        def parse(line):
            m = _ARCTIC_LINE.match(line.strip())
            return (m.group(1), m.group(2)) if m else None

        return self._load(voice_dir / "etc" / "txt.done.data", parse).get(utt, "")


def _vctk_text(path: Path, spk: str, utt_id: str) -> str:
    for ancestor in path.parents:
        txt = ancestor / "txt" / spk / f"{utt_id}.txt"
        if txt.is_file():
            return txt.read_text(encoding="utf-8", errors="replace").strip()
        if ancestor.name.startswith("wav48") or ancestor.name == "wav":
            txt = ancestor.parent / "txt" / spk / f"{utt_id}.txt"
            return (
                txt.read_text(encoding="utf-8", errors="replace").strip() if txt.is_file() else ""
            )
    return ""


def _subset_split(parts: tuple[str, ...]) -> str | None:
    for part in parts:
        low = part.lower()
        if re.match(r"^(train)[-_]", low) or re.match(r"^s[id]_tr_", low):
            return "train"
        if re.match(r"^dev[-_]", low) or re.match(r"^s[id]_dt_", low):
            return "valid"
        if re.match(r"^test[-_]", low) or re.match(r"^s[id]_et_", low):
            return "test"
    return None


def classify(path: Path, texts: _TextIndex) -> tuple[str, str, str]:
    """``(layout, speaker, text)`` of one audio file from its path and sidecar files."""
    stem, parent = path.stem, path.parent
    m = _LIBRI.match(stem)
    if m and parent.name == m.group(2) and parent.parent.name == m.group(1):
        return "librispeech", m.group(1), texts.librispeech(path, m.group(1), m.group(2))
    m = _VCTK.match(stem)
    if m and parent.name == m.group(1):
        utt_id = f"{m.group(1)}_{m.group(2)}"
        return "vctk", m.group(1), _vctk_text(path, m.group(1), utt_id)
    m = _ARCTIC_DIR.match(parent.parent.name)
    if m and parent.name == "wav":
        return "arctic", m.group(1), texts.arctic(parent.parent, stem)
    m = _WSJ0.match(stem.lower())
    if m and parent.name.lower() == m.group(1):
        return "wsj0", m.group(1), ""
    return "generic", parent.name, ""


def scan_corpus(
    root: str | Path,
    manifest: str | Path,
    *,
    sr: int = 16000,
    valid_percent: float = 5.0,
    progress: bool = True,
) -> ScanResult:
    """Index every readable audio file under ``root`` into the JSONL ``manifest``."""
    root, manifest = Path(root).expanduser(), Path(manifest).expanduser()
    if not root.is_dir():
        raise VaeAudioError(f"corpus folder '{root}' does not exist; give the corpus's root")
    if manifest.suffix.lower() in AUDIO_EXTENSIONS:
        raise VaeAudioError(f"manifest '{manifest}' has an audio extension; name it *.jsonl")
    files = sorted(
        Path(d) / f
        for d, _, names in os.walk(root, followlinks=True)
        for f in names
        if f.lower().endswith(AUDIO_EXTENSIONS) and not f.startswith(".")
    )
    if not files:
        raise VaeAudioError(f"no .wav/.flac files under '{root}'; check the folder")
    result, texts, entries = ScanResult(manifest=manifest, n_files=len(files)), _TextIndex(), []
    for path in tqdm(files, desc="scan", unit="file", disable=not progress):
        try:
            info = audio_info(path)
        except VaeAudioError as exc:
            result.unreadable.append((str(path), str(exc)))
            continue
        if info.sample_rate < sr:
            result.low_rate.append(str(path))
            continue
        layout, speaker, text = classify(path, texts)
        rel = path.relative_to(root)
        split = _subset_split(rel.parts[:-1])
        if split is None:
            hashed = zlib.crc32(rel.as_posix().encode()) % 10000
            split = "valid" if hashed < valid_percent * 100 else "train"
        entries.append(
            {
                "path": str(path.resolve()),
                "duration": round(info.duration, 4),
                "speaker": speaker,
                "text": text,
                "split": split,
                "sample_rate": info.sample_rate,
                "channels": info.channels,
                "corpus": layout,
            }
        )
        result.layouts[layout] += 1
        result.splits[split] += 1
        result.hours += info.duration / 3600.0
    if not entries:
        raise VaeAudioError(
            f"none of the {len(files)} audio files under '{root}' is usable "
            f"({len(result.unreadable)} unreadable, {len(result.low_rate)} below {sr} Hz); "
            "check the files or lower --sr"
        )
    write_manifest(manifest, entries)
    for split in sorted(result.splits):
        path = manifest.with_name(f"{manifest.stem}.{split}{manifest.suffix}")
        write_manifest(path, [e for e in entries if e["split"] == split])
        result.split_manifests[split] = path
    return result
