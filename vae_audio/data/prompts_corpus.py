"""A recorded speech corpus from Debian's Asterisk prompts (``vae-audio corpus prompts``).

Debian ships the Asterisk PBX core sound prompts, professionally recorded by two voice
artists and licensed CC BY-SA 3.0: ``asterisk-core-sounds-en-g722`` (Allison Smith, US
English), ``-es-g722`` (Allison Smith, Mexican Spanish) and ``-fr-g722`` (June Wallack,
Canadian French). They install to ``/usr/share/asterisk/sounds/<lang>_f_<Name>/`` with
subfolders ``digits/ letters/ phonetic/ dictate/ followme/ silence/``. Each ``.g722`` file is
a raw G.722 bitstream (ITU-T G.722, 64 kbit/s, 16 kHz; no header, 2 samples per byte),
decoded with a fresh decoder per file (the codec is stateful) by the ``g722`` package.

Only these three packages are read; the other languages' prompt packages (it, ru, ...) stay
out so they remain an unseen check. Skipped: the ``silence/`` folder, the non-speech prompts
(:data:`NON_SPEECH`: beeps, tone sweeps, monkeys, as the packages' transcripts mark them)
and prompts shorter than ``min_seconds`` (0.5 s) after trimming (single letters, "and").
The decoded prompts peak near 0.7 and sit at about -17..-20 dBFS; none clips.

Post-processing, as in :mod:`vae_audio.data.tts_corpus`: leading/trailing silence trimmed
(frames 40 dB below the loudest, 50 ms kept), RMS normalised to ``level_dbfs`` (default
-25 dBFS, lowered if the peak would exceed 0.99), saved as 16-kHz 16-bit PCM WAV.

Splits. There are only two voices: Allison (en_US and es_MX are the same person) and June.

- ``train``: Allison's en_US prompts, less ``valid``.
- ``valid``: ``valid_fraction`` (5 %) of Allison's en_US prompts, drawn with ``seed``, to
  monitor fitting on the training voice.
- ``test``: June's fr_CA prompts (a voice in no training set, neither here nor in the TTS
  corpus) and Allison's es_MX prompts (the training voice, but other recordings in another
  language). Every 2-talker mixture simulated from ``test.jsonl`` therefore pairs June with
  Allison: one unseen and one seen voice, never two unseen ones.

Output: ``OUT/wav/<folder>/<subfolder>/<prompt>.wav`` (``<folder>`` as installed, e.g.
``en_US_f_Allison``), ``OUT/train.jsonl``, ``OUT/valid.jsonl``, ``OUT/test.jsonl`` (lines
``{"path", "duration", "speaker", "engine": "recorded", "text", "split", "sample_rate",
"language", "subfolder", "source"}``; ``speaker`` is ``asterisk_allison`` or
``asterisk_june``, ``text`` the prompt's name such as ``digits/7`` or ``vm-goodbye``),
``OUT/CREDITS.txt`` (the attribution the licence requires) and ``OUT/corpus.json``
(settings; rebuilding with the same settings and packages resumes).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vae_audio.audio.io import audio_info, save_audio
from vae_audio.data.build_state import claim_output_folder
from vae_audio.data.levels import normalise_rms, trim_silence
from vae_audio.data.manifest import write_manifest
from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write_text

SAMPLE_RATE = 16000  # G.722 wideband


@dataclass(frozen=True)
class _Source:
    folder: str  # as installed below the sounds folder
    language: str
    speaker: str
    split: str  # "train" (valid is drawn from it) or "test"

    @property
    def package(self) -> str:
        return f"asterisk-core-sounds-{self.language[:2]}-g722"


SOURCES = (
    _Source("en_US_f_Allison", "en_US", "asterisk_allison", "train"),
    _Source("es_MX_f_Allison", "es_MX", "asterisk_allison", "test"),
    _Source("fr_CA_f_June", "fr_CA", "asterisk_june", "test"),
)

NON_SPEECH = frozenset(
    {
        "ascending-2tone",
        "beep",
        "beeperr",
        "confbridge-join",
        "confbridge-leave",
        "descending-2tone",
        "tt-monkeys",
    }
)

CREDITS = """\
Recorded speech derived from the Asterisk core sound prompts (asterisk-core-sounds 1.6.1,
Debian packages asterisk-core-sounds-{en,es,fr}-g722), licensed under CC BY-SA 3.0
(https://creativecommons.org/licenses/by-sa/3.0/).
en_US and es_MX prompts: recorded by Allison Smith (http://www.theivrvoice.com),
Copyright 2003-2010 Allison Smith; financial contributions by Digium, Inc.
fr_CA prompts: recorded by June Wallack (http://www.junewallack.com), Copyright 2006-2008
June Wallack; translated into French by Clod Patry, Kristopher Lalletti and June Wallack;
financial contributions by Digium, Inc., Unlimitel and BGM Informatique.
Changes: decoded from G.722, silence trimmed, RMS level normalised, saved as 16-bit WAV.
These WAV files are distributed under the same licence, CC BY-SA 3.0.
"""

_INSTALL = "apt-get install " + " ".join(s.package for s in SOURCES)


@dataclass(frozen=True)
class PromptsCorpusResult:
    """What a build produced: counts per split, seconds per (speaker, language), skips."""

    out: Path
    n_train: int
    n_valid: int
    n_test: int
    seconds: dict[tuple[str, str], float]
    n_skipped: int


def _codec():
    try:
        import G722
    except ImportError as exc:
        raise VaeAudioError(
            "decoding the Asterisk prompts needs the G.722 codec: pip install g722"
        ) from exc
    return G722


def decode_g722(path: str | Path) -> np.ndarray:
    """Decode a raw 64-kbit/s G.722 file to float32 ``[S]`` in [-1, 1) at 16 kHz.

    ``S`` is twice the file's byte count. The output lags the encoder's input by the codec's
    QMF delay (22 samples, 1.4 ms).
    """
    data = Path(path).read_bytes()
    pcm = _codec().G722(SAMPLE_RATE, 64000).decode(data)  # fresh decoder: the codec has state
    return np.asarray(pcm, dtype=np.int16).astype(np.float32) / 32768.0  # [S]


def _prompts(root: Path) -> list[tuple[_Source, Path]]:
    """Every ``(source, .g722 file)`` of the three packages, sorted; errors if one is absent."""
    found, missing = [], []
    for source in SOURCES:
        files = sorted((root / source.folder).rglob("*.g722"))
        if not files:
            missing.append(str(root / source.folder))
        found += [(source, f) for f in files]
    if missing:
        raise VaeAudioError(
            f"no Asterisk G.722 prompts in {', '.join(missing)}; install them with "
            f"`sudo {_INSTALL}` (or pass --sounds DIR)"
        )
    return found


def _listing_digest(root: Path, prompts: list[tuple[_Source, Path]]) -> str:
    """SHA-256 of the sorted (relative path, size) list: ties a build to the packages."""
    text = "\n".join(f"{f.relative_to(root).as_posix()} {f.stat().st_size}" for _, f in prompts)
    return hashlib.sha256(text.encode()).hexdigest()


def _render(source_file: Path, final: Path, level_dbfs: float, min_seconds: float) -> float:
    """Decode, trim, normalise and save one prompt; return its duration (0 if too short)."""
    if final.is_file():
        try:
            return audio_info(final).duration
        except VaeAudioError:
            pass  # unreadable leftover: render again
    wav = trim_silence(decode_g722(source_file), SAMPLE_RATE)  # [S]
    if wav.size < min_seconds * SAMPLE_RATE:
        return 0.0
    wav = normalise_rms(torch.from_numpy(wav), level_dbfs)  # [S]
    save_audio(final, wav, SAMPLE_RATE, subtype="PCM_16")
    return wav.numel() / SAMPLE_RATE


def _valid_names(names: list[str], fraction: float, seed: int) -> set[str]:
    """``round(fraction * len(names))`` of ``names``, drawn with ``seed``."""
    k = int(round(fraction * len(names)))
    rng = np.random.default_rng([seed, 6])
    return set(rng.choice(sorted(names), size=k, replace=False).tolist()) if k else set()


def build_prompts_corpus(
    out: str | Path,
    *,
    sounds_dir: str | Path = "/usr/share/asterisk/sounds",
    seed: int = 0,
    valid_fraction: float = 0.05,
    level_dbfs: float = -25.0,
    min_seconds: float = 0.5,
    progress: bool = True,
) -> PromptsCorpusResult:
    """Decode the en_US, es_MX and fr_CA Asterisk prompts under ``sounds_dir`` into ``out``.

    ``seed`` draws the ``valid_fraction`` of Allison's en_US prompts that go to ``valid``
    instead of ``train``. Raises :class:`VaeAudioError` naming the Debian packages when a
    language folder has no ``.g722`` files, and ``pip install g722`` when the codec is absent.
    """
    out, root = Path(out).expanduser(), Path(sounds_dir).expanduser().resolve()
    if not 0.0 <= valid_fraction < 1.0:
        raise VaeAudioError(f"--valid-fraction must be in [0, 1), got {valid_fraction}")
    prompts = [
        (s, f) for s, f in _prompts(root) if f.parent.name != "silence" and f.stem not in NON_SPEECH
    ]
    _codec()  # fail before touching ``out``
    settings = {
        "source": "asterisk-core-sounds g722",
        "sounds_dir": str(root),
        "sources_sha256": _listing_digest(root, prompts),
        "seed": seed,
        "valid_fraction": valid_fraction,
        "sample_rate": SAMPLE_RATE,
        "level_dbfs": level_dbfs,
        "min_seconds": min_seconds,
    }
    claim_output_folder(out, "corpus", settings)
    atomic_write_text(out / "CREDITS.txt", CREDITS)
    entries, seconds, skipped = [], {}, 0
    for source, path in tqdm(prompts, desc="prompts corpus", unit="file", disable=not progress):
        name = path.relative_to(root / source.folder).with_suffix("").as_posix()
        final = out / "wav" / source.folder / f"{name}.wav"
        duration = _render(path, final, level_dbfs, min_seconds)
        if duration == 0.0:
            skipped += 1
            continue
        key = (source.speaker, source.language)
        seconds[key] = seconds.get(key, 0.0) + duration
        entries.append(
            {
                "path": str(final),
                "duration": round(duration, 4),
                "speaker": source.speaker,
                "engine": "recorded",
                "text": name,
                "split": source.split,
                "sample_rate": SAMPLE_RATE,
                "language": source.language,
                "subfolder": name.rpartition("/")[0],
                "source": str(path),
            }
        )
    valid = _valid_names(
        [e["text"] for e in entries if e["split"] == "train"], valid_fraction, seed
    )
    lines = {"train": [], "valid": [], "test": []}
    for entry in entries:
        if entry["split"] == "train" and entry["text"] in valid:
            entry["split"] = "valid"
        lines[entry["split"]].append(entry)
    for split, split_entries in lines.items():
        write_manifest(out / f"{split}.jsonl", split_entries)
    return PromptsCorpusResult(
        out=out,
        n_train=len(lines["train"]),
        n_valid=len(lines["valid"]),
        n_test=len(lines["test"]),
        seconds=seconds,
        n_skipped=skipped,
    )
