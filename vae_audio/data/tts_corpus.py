"""Build a synthetic English speech corpus with the TTS engines (``vae-audio corpus tts``).

Speakers are engine voices (:mod:`vae_audio.data.tts_engines`): 5 flite voices, every
non-mbrola English espeak-ng voice with the ``+m1..+m7`` / ``+f1..+f5`` variants, and the
installed festival voices. ``languages`` and ``variants`` widen espeak-ng's share to other
languages (reading the same English sentences) and voice variants. Each speaker gets a base
pitch and rate drawn from the seed; every utterance jitters them (pitch +-10 % or +-8
espeak-ng steps, rate -10..+12 % or +-15 words/minute). Utterance ``i`` (speaker, sentence,
jitter, split) depends only on the seed and ``i``, so the same seed gives the same files
whatever ``jobs`` is, and a larger ``hours`` extends a corpus (its first utterances are the
smaller corpus).

Post-processing of every utterance: mono, resampled to 16 kHz (torchaudio's windowed sinc),
leading/trailing silence trimmed (frames 40 dB below the loudest, 50 ms kept), RMS
normalised to ``level_dbfs`` (default -25 dBFS, lowered if the peak would exceed 0.99),
saved as 16-bit PCM WAV.

Split: ``valid`` holds (a) every utterance of held-out speakers, ``valid_speakers`` (10 %) of
the speakers of every engine with at least 4 voices (at least one each), so a speech prior
can be reported on unseen voices, plus every speaker named in ``hold_out`` (e.g. the
held-out voices of another corpus, so that a prior trained on both never hears them; they
count towards the 10 %); and (b) ``valid_utterances`` (5 %) of the utterances of
every other speaker, to monitor fitting on seen voices. Everything else is ``train``.
``test`` holds part (a) alone: the held-out speakers' utterances, voice-disjoint from
``train``, for separation tests on unseen voices (``vae-audio simulate --corpus
OUT/test.jsonl --split test``). Its lines are valid's lines of those speakers with
``"split": "test"`` (the same files). Valid is kept whole, so speech-prior reports on it do
not change; when test is the final report, select models on valid's seen-voice lines only.
The test split leaves train untouched: a corpus built before it existed has the same train
for the same seed, and re-running its command adds ``test.jsonl``.

Output: ``OUT/wav/<speaker>/<speaker>_<i>.wav``, ``OUT/train.jsonl``, ``OUT/valid.jsonl``,
``OUT/test.jsonl`` (lines ``{"path", "duration", "speaker", "engine", "text", "split", ...}``)
and ``OUT/corpus.json`` (settings; rebuilding with the same settings resumes or grows).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from vae_audio.audio.io import audio_info, resample, save_audio
from vae_audio.data.build_state import claim_output_folder, worker_map
from vae_audio.data.levels import normalise_rms, trim_silence
from vae_audio.data.manifest import write_manifest
from vae_audio.data.sentences import sentence_pool
from vae_audio.data.tts_engines import ENGINES, Voice, discover_voices, synthesise
from vae_audio.errors import VaeAudioError


@dataclass(frozen=True)
class TtsCorpusResult:
    """What a build produced: counts, hours of audio and the engines that were missing."""

    out: Path
    n_train: int
    n_valid: int
    n_test: int  # the held-out speakers' utterances, also counted in n_valid
    hours: float
    n_speakers: int
    heldout_speakers: tuple[str, ...]
    n_failed: int
    missing_engines: tuple[str, ...]


def _speaker_bases(voices: list[Voice], seed: int) -> list[tuple[float, float]]:
    """Per-speaker base (pitch, rate) in engine units."""
    rng = np.random.default_rng([seed, 1])
    bases = []
    for v in voices:
        u_pitch, u_rate = rng.random(2)
        if v.engine == "espeak-ng":
            bases.append((30.0 + 40.0 * u_pitch, 150.0 + 40.0 * u_rate))
        else:
            bases.append((v.natural_pitch * (0.92 + 0.16 * u_pitch), 0.95 + 0.1 * u_rate))
    return bases


def _heldout(
    voices: list[Voice], seed: int, fraction: float, forced: frozenset[str] = frozenset()
) -> set[str]:
    """Held-out speakers: ``forced`` ones, topped up per engine to ``fraction`` of its voices."""
    rng = np.random.default_rng([seed, 2])
    held = {v.speaker for v in voices if v.speaker in forced}
    for engine in ENGINES:
        names = [v.speaker for v in voices if v.engine == engine]
        if len(names) >= 4 and fraction > 0:
            k = max(1, int(round(fraction * len(names))))
            free = [n for n in names if n not in held]
            k -= len(names) - len(free)
            if k > 0:
                held.update(rng.choice(free, size=k, replace=False).tolist())
    return held


def _plan(
    voices: list[Voice], texts: Sequence[str], seed: int, held: set[str], valid_utt: float
) -> Iterator[dict]:
    """Endless deterministic stream of utterance descriptions (index i -> same item)."""
    bases = _speaker_bases(voices, seed)
    n_spk, n_txt = len(voices), len(texts)
    i = 0
    while True:
        spk_perm = np.random.default_rng([seed, 4, i // n_spk]).permutation(n_spk)
        txt_perm = np.random.default_rng([seed, 3, i // n_txt]).permutation(n_txt)
        k = int(spk_perm[i % n_spk])
        voice, (pitch, rate) = voices[k], bases[k]
        rng = np.random.default_rng([seed, 5, i])
        u_pitch, u_rate, u_split = rng.random(3)
        if voice.engine == "espeak-ng":
            pitch = float(np.clip(pitch + 16.0 * u_pitch - 8.0, 0, 99))
            rate = rate + 30.0 * u_rate - 15.0
        else:
            pitch, rate = pitch * (0.9 + 0.2 * u_pitch), rate * (0.9 + 0.22 * u_rate)
        valid = voice.speaker in held or u_split < valid_utt
        yield {
            "index": i,
            "engine": voice.engine,
            "voice": voice.name,
            "speaker": voice.speaker,
            "text": texts[int(txt_perm[i % n_txt])],
            "pitch": round(float(pitch), 3),
            "rate": round(float(rate), 4),
            "split": "valid" if valid else "train",
            "relpath": f"wav/{voice.speaker}/{voice.speaker}_{i:06d}.wav",
        }
        i += 1


def _render(job: tuple[dict, str, int, float]) -> tuple[float, str]:
    """Synthesise and post-process one utterance; return (duration s, error or '')."""
    item, out, sr, level_dbfs = job
    final = Path(out) / item["relpath"]
    if final.is_file():
        try:
            return audio_info(final).duration, ""
        except VaeAudioError:
            pass  # unreadable leftover: render again
    try:
        with tempfile.TemporaryDirectory(prefix="vae_audio_tts_") as tmp:
            raw = Path(tmp) / "raw.wav"
            voice = Voice(item["engine"], item["voice"])
            synthesise(voice, item["text"], item["pitch"], item["rate"], raw)
            data, raw_sr = sf.read(str(raw), dtype="float32", always_2d=True)  # [S, C]
        wav = resample(torch.from_numpy(data.mean(axis=1)), raw_sr, sr)  # [S]
        wav = torch.from_numpy(trim_silence(wav.numpy(), sr))
        if wav.numel() < int(0.1 * sr):
            return 0.0, f"{item['speaker']} produced silence for '{item['text']}'"
        wav = normalise_rms(wav, level_dbfs)
        save_audio(final, wav, sr, subtype="PCM_16")
        return wav.numel() / sr, ""
    except (VaeAudioError, sf.LibsndfileError) as exc:
        return 0.0, str(exc)


def build_tts_corpus(
    out: str | Path,
    *,
    hours: float = 1.0,
    max_utterances: int | None = None,
    seed: int = 0,
    engines: Sequence[str] = ENGINES,
    jobs: int = 1,
    sample_rate: int = 16000,
    level_dbfs: float = -25.0,
    valid_speakers: float = 0.1,
    valid_utterances: float = 0.05,
    sentences: Sequence[str] | None = None,
    languages: str | Sequence[str] = "en",
    variants: str | Sequence[str] = "standard",
    hold_out: Sequence[str] = (),
    progress: bool = True,
) -> TtsCorpusResult:
    """Synthesise utterances until ``hours`` of audio (or ``max_utterances``) exist in ``out``.

    ``sentences`` replaces the built-in :func:`sentence_pool` (e.g. short phrases for test
    fixtures). ``languages`` / ``variants`` choose espeak-ng's voices
    (:func:`~vae_audio.data.tts_engines.discover_voices`); ``hold_out`` names speakers that
    must stay out of ``train`` (module docstring). Engines that are not installed are
    reported and skipped; with none at all a :class:`VaeAudioError` says which Debian packages
    to install.
    """
    out = Path(out).expanduser()
    if hours <= 0 or (max_utterances is not None and max_utterances <= 0):
        raise VaeAudioError("--hours and --utterances must be positive; e.g. --hours 1")
    if jobs < 1:
        raise VaeAudioError(f"--jobs must be at least 1, got {jobs}")
    engines = tuple(dict.fromkeys(engines))
    languages = languages if isinstance(languages, str) else tuple(languages)
    variants = variants if isinstance(variants, str) else tuple(variants)
    voices, missing = discover_voices(engines, languages=languages, variants=variants)
    if not voices:
        raise VaeAudioError("no TTS engine available: " + "; ".join(missing))
    texts = list(sentences) if sentences is not None else sentence_pool()
    settings = {
        "seed": seed,
        "engines": list(engines),
        "speakers": [v.speaker for v in voices],
        "sample_rate": sample_rate,
        "level_dbfs": level_dbfs,
        "valid_speakers": valid_speakers,
        "valid_utterances": valid_utterances,
        "hours": hours,
        "sentences_sha256": hashlib.sha256("\n".join(texts).encode()).hexdigest(),
        "max_utterances": max_utterances,
    }
    forced = frozenset(hold_out)
    # recorded only when set, so corpora built before these options keep their settings
    if languages != "en":
        settings["languages"] = languages
    if variants != "standard":
        settings["variants"] = variants
    if forced:
        settings["hold_out"] = sorted(forced)
    claim_output_folder(out, "corpus", settings, grow_keys=("hours", "max_utterances"))
    held = _heldout(voices, seed, valid_speakers, forced)
    plan = _plan(voices, texts, seed, held, valid_utterances)
    target_s, limit = hours * 3600.0, max_utterances or np.inf
    done, failures, total = [], [], 0.0
    chunk = 4 * jobs
    bar = tqdm(total=round(target_s), unit="s", desc="tts corpus", disable=not progress)
    with worker_map(jobs) as pmap:
        while total < target_s and len(done) < limit:
            batch = [next(plan) for _ in range(chunk)]
            jobs_ = [(item, str(out), sample_rate, level_dbfs) for item in batch]
            results = pmap(_render, jobs_)
            for item, (duration, error) in zip(batch, results, strict=True):
                if total >= target_s or len(done) >= limit:  # overshoot of the last chunk
                    (out / item["relpath"]).unlink(missing_ok=True)
                elif error:
                    failures.append(error)
                else:
                    done.append({**item, "duration": round(duration, 4)})
                    total += duration
                    bar.update(min(duration, target_s - bar.n))
            if failures and len(failures) > max(len(done), 8):
                raise VaeAudioError(f"TTS synthesis keeps failing; first error: {failures[0]}")
    bar.close()
    lines = {"train": [], "valid": [], "test": []}
    for item in done:
        entry = {
            "path": str(out / item["relpath"]),
            "duration": item["duration"],
            "speaker": item["speaker"],
            "engine": item["engine"],
            "text": item["text"],
            "split": item["split"],
            "sample_rate": sample_rate,
            "voice": item["voice"],
            "pitch": item["pitch"],
            "rate": item["rate"],
        }
        lines[item["split"]].append(entry)
        if item["speaker"] in held:
            lines["test"].append({**entry, "split": "test"})
    for split, entries in lines.items():
        write_manifest(out / f"{split}.jsonl", entries)
    return TtsCorpusResult(
        out=out,
        n_train=len(lines["train"]),
        n_valid=len(lines["valid"]),
        n_test=len(lines["test"]),
        hours=total / 3600.0,
        n_speakers=len(voices),
        heldout_speakers=tuple(sorted(held)),
        n_failed=len(failures),
        missing_engines=tuple(missing),
    )
