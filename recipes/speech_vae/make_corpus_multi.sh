#!/usr/bin/env bash
# Builds the many-voice corpora of recipes/speech_vae/{mlp,conv}_multi.yaml under data/:
#   data/tts       the 1 h TTS corpus (flite + English espeak-ng; its held-out voices are
#                  the matrix's TTS test voices)
#   data/prompts   recorded Asterisk prompts (train: Allison en_US; test: June fr_CA and
#                  Allison es_MX, never trained on)
#   data/tts10/    flite 1.5 h, espeak-ng English with all variants 3.5 h, espeak-ng in every
#                  other language (reading English sentences) 4 h, festival 1.5 h; the held-out
#                  voices of data/tts stay held out here too
#   data/tts10/valid_seen.jsonl   the valid lines of seen voices, for model selection
# Needs flite, espeak-ng, festival with voices (apt-get install festival festvox-kallpc16k
# festvox-kdlpc16k festvox-us-slt-hts festvox-ca-ona-hts festvox-italp16k festvox-itapc16k
# festvox-suopuhe-lj festvox-suopuhe-mv festvox-ru festvox-czech-dita festvox-czech-krb
# festvox-czech-machac festvox-czech-ph; the Indian-language festvox voices crash on English
# text), and the Asterisk prompts (recipes/bench/README.md). About 19 min on a busy
# 2-core CPU (festival takes most of it). FESTIVAL=0 leaves festival out (as the shipped
# speech-vae-conv prior was trained). Corpora already built are kept.
set -euo pipefail
cd "$(dirname "$0")/../.."
VAE_AUDIO=${VAE_AUDIO:-.venv/bin/vae-audio}
PYTHON=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The 1 h corpus predates festival here: build it without festival to keep it as shipped.
[ -f data/tts/train.jsonl ] || \
    "$VAE_AUDIO" corpus tts data/tts --hours 1 --seed 0 --jobs 2 --engines flite,espeak-ng
[ -f data/prompts/train.jsonl ] || "$VAE_AUDIO" corpus prompts data/prompts
FESTIVAL=${FESTIVAL:-1}
HOLD="--hold-out data/tts/test.jsonl"
[ -f data/tts10/flite/train.jsonl ] || \
    "$VAE_AUDIO" corpus tts data/tts10/flite --engines flite --hours 1.5 --jobs 2 $HOLD
[ -f data/tts10/espeak_en/train.jsonl ] || \
    "$VAE_AUDIO" corpus tts data/tts10/espeak_en --engines espeak-ng --variants all \
    --hours 3.5 --jobs 2 $HOLD
[ -f data/tts10/espeak_world/train.jsonl ] || \
    "$VAE_AUDIO" corpus tts data/tts10/espeak_world --engines espeak-ng --languages all,-en \
    --hours 4 --jobs 2
[ "$FESTIVAL" = 0 ] || [ -f data/tts10/festival/train.jsonl ] || \
    "$VAE_AUDIO" corpus tts data/tts10/festival --engines festival --hours 1.5 --jobs 2
FESTIVAL=$FESTIVAL "$PYTHON" - <<'PY'
import json
import os
from pathlib import Path

engines = ["flite", "espeak_en", "espeak_world"] + (["festival"] * (os.environ["FESTIVAL"] != "0"))
parts = ["data/tts"] + [f"data/tts10/{p}" for p in engines]
held = set()
for part in parts:
    held |= {json.loads(line)["speaker"] for line in open(f"{part}/test.jsonl") if line.strip()}
lines = []
for part in parts:
    for line in open(f"{part}/valid.jsonl"):
        entry = json.loads(line) if line.strip() else None
        if entry and entry["speaker"] not in held:
            entry["path"] = str((Path(part) / entry["path"]).resolve())  # relative to its corpus
            lines.append(json.dumps(entry) + "\n")
Path("data/tts10/valid_seen.jsonl").write_text("".join(lines))
print(f"data/tts10/valid_seen.jsonl: {len(lines)} utterances of seen voices")
PY
