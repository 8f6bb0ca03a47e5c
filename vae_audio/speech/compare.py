"""Compare speech priors on held-out sets: IS divergence per frame, set by set.

``python -m vae_audio.speech.compare --prior NAME=PRIOR ... --set NAME=MANIFEST ...``
scores every prior on every set (a set is a corpus manifest, e.g. the held-out voices of one
engine, or one recorded voice) and prints a Markdown table:

- IS divergence between ``|x|²`` and ``g(μ(x))``, the PSD decoded from the posterior mean,
  in nats per frame (sum over F, mean over all frames of the set's utterances), as in
  :mod:`vae_audio.speech.report`; lower is better;
- the same for the best single spectral shape with a per-frame gain (the set's own mean
  PSD, :func:`~vae_audio.speech.report.mean_psd`, and ``a_t = mean_f(|x_ft|² / m_f)``): a
  prior-free reference for how hard the set is.

Utterances are loudness-normalised to -25 dBFS as in training; ``--per-speaker`` and
``--limit`` cap what is read from each set (the first utterances of each speaker, in the
manifest's order). Every prior must share one STFT.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from vae_audio.audio.io import load_audio
from vae_audio.data.levels import normalise_rms
from vae_audio.data.manifest import read_manifest
from vae_audio.errors import VaeAudioError
from vae_audio.speech.prior import load_speech_prior
from vae_audio.speech.report import mean_psd, score_prior


def _pairs(values: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise VaeAudioError(f"--{what} {value!r}: write NAME=PATH")
        out.append((name, path))
    return out


def select_entries(
    manifest: str | Path, per_speaker: int | None = None, limit: int | None = None
) -> list[dict]:
    """The first ``per_speaker`` lines of each speaker of ``manifest``, at most ``limit``."""
    counts: dict[str, int] = {}
    chosen = []
    for entry in read_manifest(manifest, require=("path",)):
        speaker = entry.get("speaker", "")
        if per_speaker is not None and counts.get(speaker, 0) >= per_speaker:
            continue
        counts[speaker] = counts.get(speaker, 0) + 1
        chosen.append(entry)
        if limit is not None and len(chosen) >= limit:
            break
    return chosen


def compare_priors(
    priors: list[tuple[str, str]],
    sets: list[tuple[str, str]],
    per_speaker: int | None = 5,
    limit: int | None = 150,
) -> list[dict]:
    """One row per set: utterances, voices, frames, the gain-adapted mean-PSD score and each
    prior's held-out IS divergence (nats per frame; keys ``is:<prior name>``)."""
    models = [(name, load_speech_prior(path)) for name, path in priors]
    stft = models[0][1].stft_config
    for name, model in models[1:]:
        model.check_stft(stft, f"prior {name!r}")
    rows = []
    for set_name, manifest in sets:
        entries = select_entries(manifest, per_speaker, limit)
        waves = []
        for entry in entries:
            wav, _ = load_audio(entry["path"], sr=stft.sample_rate)  # [C, S]
            waves.append(normalise_rms(wav.mean(0), -25.0))  # [S]
        if not waves:
            raise VaeAudioError(f"set {set_name!r}: '{manifest}' has no utterance")
        ref = mean_psd(models[0][1], waves)  # [F]
        row = {
            "set": set_name,
            "utterances": len(waves),
            "voices": len({e.get("speaker", "") for e in entries}),
        }
        for name, model in models:
            scores = score_prior(model, waves, ref)
            row["frames"] = scores.n_frames
            row["is:gain-adapted mean PSD"] = scores.is_div_fixed_gain
            row[f"is:{name}"] = scores.is_div_vae
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table (IS columns with one decimal)."""
    keys = list(rows[0])
    head = [k.removeprefix("is:") for k in keys]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(keys) - 1) + "|"]
    for row in rows:
        cells = [f"{row[k]:.1f}" if k.startswith("is:") else str(row[k]) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vae_audio.speech.compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--prior", action="append", required=True, metavar="NAME=PRIOR")
    parser.add_argument("--set", action="append", required=True, metavar="NAME=MANIFEST")
    parser.add_argument("--per-speaker", type=int, default=5, help="utterances per voice")
    parser.add_argument("--limit", type=int, default=150, help="utterances per set")
    parser.add_argument("--out", metavar="PREFIX", help="also write PREFIX.md and PREFIX.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        rows = compare_priors(
            _pairs(args.prior, "prior"), _pairs(args.set, "set"), args.per_speaker, args.limit
        )
    except VaeAudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = markdown(rows)
    print(table + f"\n({time.perf_counter() - start:.0f} s)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(f"{args.out}.md").write_text(table, encoding="utf-8")
        Path(f"{args.out}.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
