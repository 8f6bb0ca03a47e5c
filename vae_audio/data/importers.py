"""Manifests of published separation corpora, read in place (``vae-audio corpus import``).

Each importer walks a corpus tree the way its generation scripts write it and writes one
mixture manifest per subset, ``OUT/<subset>.jsonl``, in the format of ``vae-audio simulate``
(:mod:`vae_audio.data.manifest`): ``id``, ``mix``, ``sources`` (one reference per talker),
``noise`` where the corpus stores it, ``duration`` (s), ``sample_rate`` (Hz), ``channels``,
``n_speakers``, ``split`` (``train``/``valid``/``test``), plus ``subset`` (the corpus' own
name), ``corpus`` and ``reference`` (what the references are). Paths are absolute; no audio
is copied. ``vae-audio evaluate --ref OUT/<subset>.jsonl`` and ``vae-audio separate
OUT/<subset>.jsonl`` read them as they read a simulated set.

=========================  ==================================================================
corpus                     layout read (ROOT may be any folder on the way down)
=========================  ==================================================================
``librimix``               ``Libri{2,3}Mix/wav{8k,16k}/{min,max}/<subset>/{mix_clean,mix_both,
                           mix_single,s1,s2,s3,noise}/<id>.wav``; with
                           ``metadata/mixture_<subset>_<mix>.csv`` next to the subsets, its rows
                           (``mixture_ID``, ``mixture_path``, ``source_<k>_path``,
                           ``noise_path``) give the files. References: the dry utterances.
``wsj0-2mix``              ``{2,3}speakers/wav{8k,16k}/{min,max}/{tr,cv,tt}/{mix,s1,s2,s3}/``.
                           References: the dry utterances.
``spatialized-wsj0-2mix``  the same tree under ``{2,3}speakers_reverb`` or ``_anechoic``
                           (8-channel files; Wang et al. 2018). References: the talkers'
                           images at every mic, reverberant in ``_reverb`` (preferred when both
                           are there), direct-path in ``_anechoic``.
``sms-wsj``                ``sms_wsj.json`` (``datasets`` -> example id -> ``audio_path``):
                           ``observation`` (6 channels), references ``speech_image`` if listed,
                           else ``speech_reverberation_early`` (the early part of each talker's
                           image, the target of the SMS-WSJ baseline), ``noise_image``. Paths
                           that moved with the database are found again under the JSON's folder.
=========================  ==================================================================

Checks. A missing folder or file, or a source folder whose file names match none of the
mixtures', stops the import with one line naming the path and what to do. Mixtures whose
file is missing in some source folder, or that cannot be read, are skipped and counted.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write_text

PathLike = str | os.PathLike

CORPORA = ("librimix", "wsj0-2mix", "spatialized-wsj0-2mix", "sms-wsj")
LIBRIMIX_MIXES = ("mix_clean", "mix_both", "mix_single")
MODES = ("min", "max")
_AUDIO = (".wav", ".flac")
_SPLITS = {
    "train-360": "train", "train-100": "train", "dev": "valid", "test": "test",
    "tr": "train", "cv": "valid", "tt": "test",
    "train_si284": "train", "cv_dev93": "valid", "test_eval92": "test",
}  # fmt: skip
_SOURCE_DIR = re.compile(r"^s(\d+)$")
_SHOW = 3


@dataclass
class ImportResult:
    """What an import wrote: one manifest and mixture count per subset, what was skipped."""

    corpus: str
    out: Path
    reference: str
    manifests: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)  # reason -> mixtures
    examples: dict[str, str] = field(default_factory=dict)  # reason -> first path
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, path: PathLike) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, str(path))

    def summary(self) -> str:
        subsets = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        line = (
            f"{self.corpus}: {sum(self.counts.values())} mixtures ({subsets}; references: "
            f"{self.reference}) -> {', '.join(str(p) for p in self.manifests.values())}"
        )
        skipped = "; ".join(
            f"{n} skipped: {reason} (e.g. '{self.examples[reason]}')"
            for reason, n in self.skipped.items()
        )
        return "; ".join([line, *([skipped] if skipped else []), *self.notes])


def _names(paths) -> str:
    names = sorted(str(p) for p in paths)
    shown = ", ".join(f"'{n}'" for n in names[:_SHOW])
    return shown + (f" and {len(names) - _SHOW} more" if len(names) > _SHOW else "")


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _pick(
    folder: Path, pattern: str, want: str | None, what: str, option: str, prefer: str = ""
) -> Path:
    """The sub-folder of ``folder`` named ``want``, else the only one matching ``pattern``,
    else the only one matching ``prefer``; one-line errors say what is there and which
    option chooses."""
    found = [p for p in _subdirs(folder) if re.fullmatch(pattern, p.name)]
    have = _names(p.name for p in found) or "none"
    if want is not None:
        if (folder / want).is_dir():
            return folder / want
        raise VaeAudioError(
            f"'{folder}' has no {what} folder '{want}/' (found: {have}); pick one of those "
            f"with {option}"
        )
    preferred = [p for p in found if prefer and re.fullmatch(prefer, p.name)]
    if len(found) == 1 or len(preferred) == 1:
        return found[0] if len(found) == 1 else preferred[0]
    if not found:
        raise VaeAudioError(
            f"'{folder}' holds no {what} folder; point ROOT at the corpus folder as its "
            f"scripts wrote it, or pick the {what} with {option}"
        )
    raise VaeAudioError(
        f"'{folder}' holds several {what} folders ({have}); choose one with {option} or "
        "point ROOT at it"
    )


def _mode_dir(
    root: Path, group: str, speakers: int | None, sr: int | None, mode: str | None,
    prefer_group: str = "",
) -> tuple[Path, list[str]]:  # fmt: skip
    """``<group>/wav<sr>/<mode>`` below ``root`` (each level optional: ROOT may point at any
    of them), and notes on what was chosen by default."""
    notes = []

    def has(folder: Path, pattern: str) -> bool:
        return any(re.fullmatch(pattern, p.name) for p in _subdirs(folder))

    folder = root
    if has(folder, group):
        pattern = group if speakers is None else group.replace(r"\d", str(speakers), 1)
        prefer = prefer_group if speakers is None else prefer_group.replace(r"\d", str(speakers))
        folder = _pick(folder, pattern, None, "talker-count", "--speakers", prefer)
    if has(folder, r"wav\d+k"):
        rate = None if sr is None else f"wav{sr // 1000}k"
        folder = _pick(folder, r"wav\d+k", rate, "sample-rate", "--sr", "wav16k")
        if sr is None and has(folder.parent, r"wav(?!16k)\d+k"):
            notes.append(f"read {folder.name}/ (another rate with --sr)")
    if has(folder, "min|max"):
        folder = _pick(folder, "min|max", mode, "mode", "--mode", "min")
        if mode is None and has(folder.parent, "max") and folder.name == "min":
            notes.append("read min/ (the max/ mixtures with --mode max)")
    elif mode is not None and folder.name != mode:
        raise VaeAudioError(
            f"'{folder}' has no '{mode}/' folder; point ROOT at the corpus folder that holds "
            "min/ and max/, or drop --mode"
        )
    return folder, notes


def _audio_names(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in folder.iterdir() if p.suffix.lower() in _AUDIO and p.is_file()}


def _relocate(path: str, base: Path, depth: int) -> Path:
    """``path`` if it exists, else its last ``depth`` parts under ``base`` (a moved tree)."""
    p = Path(path).expanduser()
    if p.is_file():
        return p.resolve()
    moved = base.joinpath(*p.parts[-depth:])
    return moved.resolve() if moved.is_file() else p


@dataclass(frozen=True)
class _Row:
    id: str
    mix: Path
    sources: tuple[Path, ...]
    noise: Path | None = None


def _rows_from_folders(
    subset: Path, mix_name: str, n_sources: int | None, result: ImportResult
) -> list[_Row]:
    """Pair ``subset/<mix_name>/<id>.wav`` with ``subset/s<k>/<id>.wav`` (and ``noise/``)."""
    mix_dir = subset / mix_name
    if not mix_dir.is_dir():
        raise VaeAudioError(
            f"'{subset}' has no '{mix_name}/' folder (found: "
            f"{_names(p.name for p in _subdirs(subset)) or 'none'}); point ROOT at an "
            "unmodified corpus tree or choose the mixture kind with --mix"
        )
    source_dirs = sorted(
        (int(m.group(1)), p) for p in _subdirs(subset) if (m := _SOURCE_DIR.match(p.name))
    )
    source_dirs = [p for k, p in source_dirs if n_sources is None or k <= n_sources]
    if not source_dirs or source_dirs[0].name != "s1":
        raise VaeAudioError(
            f"'{subset}' has no 's1/' folder of references next to '{mix_name}/'; the "
            "reference folders s1/, s2/ ... are needed to evaluate: restore them"
        )
    mixes = _audio_names(mix_dir)
    if not mixes:
        raise VaeAudioError(f"'{mix_dir}' holds no wav/flac file; restore the corpus files")
    per_source = []
    for folder in source_dirs:
        names = _audio_names(folder)
        if not names.keys() & mixes.keys():
            raise VaeAudioError(
                f"the file names in '{folder}' ({_names(list(names)[:_SHOW]) or 'none'}) match "
                f"none in '{mix_dir}' ({_names(list(mixes)[:_SHOW])}); each source folder must "
                "hold one file per mixture, named as the mixture"
            )
        per_source.append(names)
    noise_dir = subset / "noise"
    noises = _audio_names(noise_dir) if mix_name != "mix_clean" and noise_dir.is_dir() else {}
    rows = []
    for name in sorted(mixes):
        missing = [f for f, names in zip(source_dirs, per_source, strict=True) if name not in names]
        if missing:
            result.skip(f"missing in source folder '{missing[0]}'", mixes[name])
            continue
        rows.append(_Row(name, mixes[name], tuple(n[name] for n in per_source), noises.get(name)))
    return rows


def _rows_from_csv(path: Path, base: Path, result: ImportResult) -> list[_Row]:
    """Rows of a LibriMix metadata CSV; file paths relocated under ``base`` if moved."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        if not {"mixture_ID", "mixture_path", "source_1_path"} <= set(columns):
            raise VaeAudioError(
                f"metadata file '{path}' lacks the columns mixture_ID, mixture_path, "
                f"source_1_path (has {', '.join(columns) or 'none'}); restore it or delete it "
                "to pair the files by folder"
            )
        keys = sorted(
            (c for c in columns if re.fullmatch(r"source_\d+_path", c)),
            key=lambda c: int(c.split("_")[1]),
        )
        rows = []
        for line in reader:
            files = [_relocate(line[k], base, 3) for k in ("mixture_path", *keys)]
            noise = _relocate(line["noise_path"], base, 3) if line.get("noise_path") else None
            absent = [f for f in files if not f.is_file()]
            if absent:
                result.skip("listed in the metadata but not on disk", absent[0])
                continue
            noise = noise if noise is not None and noise.is_file() else None
            rows.append(_Row(line["mixture_ID"], files[0], tuple(files[1:]), noise))
    return rows


def _entries(rows: list[_Row], meta: dict, result: ImportResult) -> list[dict]:
    from vae_audio.audio.io import audio_info

    entries = []
    for row in rows:
        try:
            info = audio_info(row.mix)
        except VaeAudioError:
            result.skip("unreadable mixture file", row.mix)
            continue
        entry = {
            "id": row.id,
            "mix": str(row.mix.resolve()),
            "sources": [str(p.resolve()) for p in row.sources],
        }
        if row.noise is not None:
            entry["noise"] = str(row.noise.resolve())
        entry.update(
            duration=round(info.duration, 6),
            sample_rate=info.sample_rate,
            channels=info.channels,
            n_speakers=len(row.sources),
            **meta,
        )
        entries.append(entry)
    return entries


def _write(out: Path, subset: str, entries: list[dict], result: ImportResult) -> None:
    if not entries:
        result.notes.append(f"subset '{subset}' has no usable mixture; no manifest written")
        return
    path = out / f"{subset}.jsonl"
    text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
    atomic_write_text(path, text)
    result.manifests[subset] = path
    result.counts[subset] = len(entries)


def _subsets(base: Path, mix_name: str, wanted: tuple[str, ...] | None) -> list[Path]:
    found = [p for p in _subdirs(base) if (p / mix_name).is_dir()]
    if wanted:
        missing = [w for w in wanted if w not in {p.name for p in found}]
        if missing:
            raise VaeAudioError(
                f"'{base}' has no subset {_names(missing)} with a '{mix_name}/' folder (found: "
                f"{_names(p.name for p in found) or 'none'}); check --subset"
            )
        found = [p for p in found if p.name in wanted]
    if not found:
        raise VaeAudioError(
            f"'{base}' holds no subset folder with a '{mix_name}/' folder inside (found: "
            f"{_names(p.name for p in _subdirs(base)) or 'none'}); point ROOT at the corpus "
            "folder as its scripts wrote it, or pick another one with --sr, --mode or --mix"
        )
    return found


def _import_tree(
    corpus: str, root: Path, out: Path, *, group: str, mix_name: str, n_sources: int | None,
    sr, mode, speakers, subsets, reference, prefer_group="", use_metadata: bool = False,
) -> ImportResult:  # fmt: skip
    base, notes = _mode_dir(root, group, speakers, sr, mode, prefer_group)
    if corpus == "spatialized-wsj0-2mix":
        variant = next((p.name for p in (base, *base.parents) if "speakers_" in p.name), "")
        reference = "direct-path images at every mic" if variant.endswith("anechoic") else reference
    result = ImportResult(corpus, out, reference, notes=notes)
    for subset in _subsets(base, mix_name, subsets):
        csv_path = base / "metadata" / f"mixture_{subset.name}_{mix_name}.csv"
        if use_metadata and csv_path.is_file():
            rows = _rows_from_csv(csv_path, base, result)
        else:
            rows = _rows_from_folders(subset, mix_name, n_sources, result)
        meta = {
            "split": _SPLITS.get(subset.name, subset.name),
            "subset": subset.name,
            "corpus": corpus,
            "reference": reference,
        }
        _write(out, subset.name, _entries(rows, meta, result), result)
    return result


def _sms_wsj(root: Path, out: Path, subsets: tuple[str, ...] | None) -> ImportResult:
    path = root / "sms_wsj.json" if root.is_dir() else root
    if not path.is_file():
        raise VaeAudioError(
            f"'{path}' does not exist; point ROOT at sms_wsj.json (or its folder), the "
            "database file written by sms_wsj's create_json_for_written_files"
        )
    try:
        datasets = json.loads(path.read_text(encoding="utf-8"))["datasets"]
        if not isinstance(datasets, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError) as exc:
        raise VaeAudioError(
            f"'{path}' is not an SMS-WSJ database file (a JSON object with 'datasets'; {exc!r}); "
            "give the sms_wsj.json that lists the written wav files"
        ) from exc
    if subsets:
        missing = [s for s in subsets if s not in datasets]
        if missing:
            raise VaeAudioError(
                f"'{path}' has no dataset {_names(missing)} (has {_names(datasets)}); check "
                "--subset"
            )
    result = ImportResult("sms-wsj", out, "")
    kinds = set()
    for name, examples in datasets.items():
        if subsets and name not in subsets:
            continue
        rows = []
        for ex_id, ex in examples.items():
            audio = ex.get("audio_path", {}) if isinstance(ex, dict) else {}
            key = next(
                (k for k in ("speech_image", "speech_reverberation_early") if audio.get(k)), None
            )
            if "observation" not in audio or key is None:
                result.skip("no observation or speech image listed", f"{path}:{name}/{ex_id}")
                continue
            kinds.add(key)
            files = [_relocate(p, path.parent, 3) for p in [audio["observation"], *audio[key]]]
            absent = [f for f in files if not f.is_file()]
            if absent:
                result.skip("listed in sms_wsj.json but not on disk", absent[0])
                continue
            noise = audio.get("noise_image")
            noise = _relocate(noise, path.parent, 3) if noise else None
            noise = noise if noise is not None and noise.is_file() else None
            rows.append(_Row(ex_id, files[0], tuple(files[1:]), noise))
        meta = {
            "split": _SPLITS.get(name, name),
            "subset": name,
            "corpus": "sms-wsj",
            "reference": "speech images at every mic"
            if kinds == {"speech_image"}
            else "early speech images at every mic (speech_reverberation_early)",
        }
        result.reference = meta["reference"]
        _write(out, name, _entries(rows, meta, result), result)
    if not result.manifests:
        raise VaeAudioError(
            f"'{path}' lists no example with its observation and speech images on disk "
            f"({sum(result.skipped.values())} skipped); write the database with sms_wsj's "
            "write_files (write_all=True) and its json, then import again"
        )
    return result


def import_corpus(
    corpus: str,
    root: PathLike,
    out: PathLike,
    *,
    sr: int | None = None,
    mode: str | None = None,
    mix: str = "mix_clean",
    speakers: int | None = None,
    subsets: tuple[str, ...] | None = None,
    metadata: bool = True,
) -> ImportResult:
    """Write ``out/<subset>.jsonl`` for every subset of ``corpus`` under ``root`` (module
    docstring). ``sr`` (Hz) and ``mode`` pick the ``wav<sr>``/``min|max`` folders (default:
    the only one, else 16 kHz and ``min``), ``mix`` the LibriMix mixture kind, ``speakers`` the
    ``Libri<n>Mix`` / ``<n>speakers`` folder, ``subsets`` limits the subsets, ``metadata``
    reads LibriMix's CSVs where present."""
    if corpus not in CORPORA:
        raise VaeAudioError(f"unknown corpus {corpus!r}; use one of {', '.join(CORPORA)}")
    root, out = Path(root).expanduser(), Path(out).expanduser()
    if not root.exists():
        raise VaeAudioError(f"corpus root '{root}' does not exist; check the path")
    if out.exists() and not out.is_dir():
        raise VaeAudioError(f"output '{out}' is a file; give a folder for the manifests")
    if sr is not None and sr % 1000:
        raise VaeAudioError(f"--sr must be a whole number of kHz (8000, 16000), got {sr}")
    subsets = tuple(subsets) if subsets else None
    if corpus == "sms-wsj":
        return _sms_wsj(root, out, subsets)
    if not root.is_dir():
        raise VaeAudioError(f"corpus root '{root}' is a file; give the corpus folder")
    if corpus == "librimix":
        if mix not in LIBRIMIX_MIXES:
            raise VaeAudioError(f"--mix must be one of {', '.join(LIBRIMIX_MIXES)}, got {mix!r}")
        return _import_tree(
            corpus, root, out, group=r"Libri\dMix", mix_name=mix,
            n_sources=1 if mix == "mix_single" else None, sr=sr, mode=mode, speakers=speakers,
            subsets=subsets, reference="dry utterances (single channel)", use_metadata=metadata,
        )  # fmt: skip
    spatial = corpus == "spatialized-wsj0-2mix"
    return _import_tree(
        corpus, root, out, group=r"\dspeakers_(reverb|anechoic)" if spatial else r"\dspeakers",
        mix_name="mix", n_sources=None, sr=sr, mode=mode, speakers=speakers, subsets=subsets,
        reference="reverberant images at every mic" if spatial else "dry utterances",
        prefer_group=r"\dspeakers_reverb" if spatial else "",
    )  # fmt: skip
