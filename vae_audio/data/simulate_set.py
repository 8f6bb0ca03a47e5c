"""Simulate a set of mixtures from a speech corpus (``vae-audio simulate``).

Mixture ``i`` uses ``numpy.random.default_rng([seed, i])`` for everything (talker count,
utterances of distinct speakers, babble utterances of other speakers, room, levels), so
the set is identical for any ``jobs`` and a larger ``n`` extends it. With
``speakers.min_speech_s`` > 0 in the preset, further utterances of each talker are drawn and
joined (0.2 s apart) until its signal lasts that long: short prompts then fill the mixture.

Per mixture ``OUT/<id>/``: ``mix.wav``, ``src1.wav`` ... (reverberant talker images),
``noise.wav`` (noise image), all ``[S, M]`` float32 WAV with ``mix == sum(src) + noise``
(computed in float32 from the saved arrays), and ``meta.json`` (room, RT60, positions, SNR,
levels, utterance paths, seed, clip-guard gain), written last. ``OUT/manifest.jsonl`` lists
``{"id", "mix", "sources", "noise", "meta", "duration", "sample_rate", "channels",
"n_speakers", "snr_db", "rt60", "split"}``. ``OUT/simulation.json`` records the settings.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vae_audio.audio.io import load_audio, save_audio
from vae_audio.data.build_state import claim_output_folder, worker_map
from vae_audio.data.manifest import file_digest, read_manifest, write_manifest
from vae_audio.data.noise import join_utterances, joined_length
from vae_audio.data.presets import SimulationPreset, load_preset
from vae_audio.data.simulate import simulate_mixture
from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write_text

_BABBLE_POOL = 12  # distinct utterances loaded per mixture for its babble sources
_STATE: dict = {}


@dataclass(frozen=True)
class SimulateResult:
    out: Path
    manifest: Path
    n_mixtures: int
    n_reused: int
    hours: float


def load_mono(path: str, sr: int) -> np.ndarray:
    """One utterance as float64 ``[S]`` at ``sr`` Hz (channels averaged)."""
    wav, _ = load_audio(path, sr=sr)  # [C, S]
    return wav.mean(dim=0).double().numpy()


def _init(entries: list[dict], preset: dict, out: str, seed: int, split: str) -> None:
    by_speaker = defaultdict(list)
    for e in entries:
        by_speaker[e["speaker"]].append(e)
    _STATE.update(
        speakers=sorted(by_speaker),
        by_speaker=dict(by_speaker),
        out=Path(out),
        preset=load_preset(preset),
        seed=seed,
        split=split,
    )


def _json_lines(meta: dict) -> str:
    """JSON object with one top-level key per line (readable, yet compact lists)."""
    items = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in meta.items())
    return "{\n" + items + "\n}\n"


def _manifest_entry(folder: Path, meta: dict) -> dict:
    return {
        "id": meta["id"],
        "mix": str(folder / "mix.wav"),
        "sources": [str(folder / f"src{k + 1}.wav") for k in range(meta["n_speakers"])],
        "noise": str(folder / "noise.wav"),
        "meta": str(folder / "meta.json"),
        "duration": meta["length_s"],
        "sample_rate": meta["sample_rate"],
        "channels": len(meta["mic_positions"]),
        "n_speakers": meta["n_speakers"],
        "snr_db": meta["snr_db"],
        "rt60": meta["rt60"],
        "split": meta["split"],
    }


def _utterance_meta(talker: list[dict]) -> dict:
    """Meta of one talker: its (first) utterance, and every path when several were joined."""
    first = talker[0]
    meta = {"path": first["path"], "speaker": first["speaker"], "text": first.get("text", "")}
    if len(talker) > 1:
        meta["paths"] = [e["path"] for e in talker]
    return meta


def _simulate_one(index: int) -> tuple[dict, bool]:
    """Simulate and save mixture ``index`` (or reuse it); return (manifest entry, reused)."""
    st, preset = _STATE, _STATE["preset"]
    mix_id = f"{index:06d}"
    folder = st["out"] / mix_id
    if (folder / "meta.json").is_file():
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        return _manifest_entry(folder, meta), True
    rng = np.random.default_rng([st["seed"], index])
    n_spk = int(rng.integers(preset.speakers.count[0], preset.speakers.count[1] + 1))
    speakers = rng.choice(len(st["speakers"]), n_spk, replace=False)
    chosen = []  # per talker: its utterances, concatenated in order
    for k in speakers:
        utts = st["by_speaker"][st["speakers"][k]]
        chosen.append([utts[int(rng.integers(len(utts)))]])
    sr = preset.sample_rate
    dry = [[load_mono(talker[0]["path"], sr)] for talker in chosen]
    if preset.speakers.min_speech_s > 0:  # further utterances of the same talker
        for k, talker, parts in zip(speakers, chosen, dry, strict=True):
            utts = st["by_speaker"][st["speakers"][k]]
            while joined_length(parts, sr) < preset.speakers.min_speech_s * sr:
                talker.append(utts[int(rng.integers(len(utts)))])
                parts.append(load_mono(talker[-1]["path"], sr))
    babble_pool = []
    if preset.noise.kind in ("babble", "mixed"):
        others = [s for i, s in enumerate(st["speakers"]) if i not in set(speakers.tolist())]
        if not others:
            raise VaeAudioError(
                "babble noise needs speakers other than the talkers; use a "
                "corpus with more speakers or noise.kind: pink"
            )
        for _ in range(_BABBLE_POOL):
            utts = st["by_speaker"][others[int(rng.integers(len(others)))]]
            babble_pool.append(load_mono(utts[int(rng.integers(len(utts)))]["path"], sr))
    sim = simulate_mixture([join_utterances(parts, sr) for parts in dry], preset, rng, babble_pool)
    for k, image in enumerate(sim.images):
        save_audio(folder / f"src{k + 1}.wav", image, sr)
    save_audio(folder / "noise.wav", sim.noise, sr)
    save_audio(folder / "mix.wav", sim.mix, sr)
    meta = {
        "id": mix_id,
        "seed": [st["seed"], index],
        "preset": preset.name,
        "split": st["split"],
        "n_speakers": n_spk,
        "utterances": [_utterance_meta(talker) for talker in chosen],
        **sim.meta,
    }
    atomic_write_text(folder / "meta.json", _json_lines(meta))
    return _manifest_entry(folder, meta), False


def simulate_dataset(
    corpus: str | Path,
    out: str | Path,
    n: int,
    *,
    preset: str | Path | SimulationPreset = "default",
    seed: int = 0,
    jobs: int = 1,
    split: str = "train",
    progress: bool = True,
) -> SimulateResult:
    """Simulate ``n`` mixtures of utterances from ``corpus`` (its ``split``) into ``out``."""
    out, corpus = Path(out).expanduser(), Path(corpus).expanduser()
    if n < 1 or jobs < 1:
        raise VaeAudioError(f"--n and --jobs must be at least 1, got n={n}, jobs={jobs}")
    preset = load_preset(preset)
    entries = read_manifest(corpus, require=("path", "speaker"), split=split)
    n_speakers = len({e["speaker"] for e in entries})
    if n_speakers < preset.speakers.count[1]:
        raise VaeAudioError(
            f"corpus '{corpus}' (split '{split}') has {n_speakers} speaker(s) but the preset "
            f"asks for up to {preset.speakers.count[1]} distinct talkers; use a larger corpus "
            "or lower speakers.count"
        )
    settings = {
        "preset": preset.to_dict(),
        "seed": seed,
        "split": split,
        "n": n,
        "corpus": str(corpus.resolve()),
        "corpus_sha256": file_digest(corpus),
    }
    claim_output_folder(out, "simulation", settings, grow_keys=("n",))
    init_args = (entries, preset.to_dict(), str(out), seed, split)
    with worker_map(jobs, _init, init_args) as pmap:
        bar = tqdm(
            pmap(_simulate_one, range(n)),
            total=n,
            desc="simulate",
            unit="mix",
            disable=not progress,
        )
        results = list(bar)
    manifest = write_manifest(out / "manifest.jsonl", [e for e, _ in results])
    return SimulateResult(
        out=out,
        manifest=manifest,
        n_mixtures=len(results),
        n_reused=sum(reused for _, reused in results),
        hours=sum(e["duration"] for e, _ in results) / 3600.0,
    )
