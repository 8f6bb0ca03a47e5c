#!/usr/bin/env bash
# Teacher round 1 for the shipped Neural FastFCA model: the round-0 model (the shipped one,
# vae_audio/_pretrained/neural_fca.pt, trained on FastMNMF2's labels) refined on every
# mixture (200 steps on its latents) labels a new teacher set of dynamically mixed 4-s
# 2-talker mixtures (new draws: seed 1; the corpus and rooms of round 0), and
# recipes/neural_fca/round1.yaml trains the round-1 model from the round-0 weights.
# The set is resumable: re-running continues it, and a larger N extends it.
# Usage: bash recipes/neural_fca/make_round1.sh [N] [training overrides...]
set -euo pipefail
cd "$(dirname "$0")/../.."
VAE_AUDIO=${VAE_AUDIO:-.venv/bin/vae-audio}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
N=${1:-400}
shift || true
[ -f data/tts/train.jsonl ] || "$VAE_AUDIO" corpus tts data/tts --hours 1 --seed 0 --jobs 2
[ -f data/rirs_default.pt ] || "$VAE_AUDIO" rir-bank data/rirs_default.pt --n 150 \
    --noise-sources 8 --seed 0 --jobs 2
[ -f data/sim/bench10/manifest.jsonl ] || "$VAE_AUDIO" simulate data/sim/bench10 \
    --corpus data/tts/valid.jsonl --split valid --n 10 --seed 0 --jobs 2
"$VAE_AUDIO" teacher-set data/teacher/round1_neural200 --corpus data/tts/train.jsonl \
    --rir-bank data/rirs_default.pt --n "$N" --seconds 4 --seed 1 --jobs 2 \
    --teacher neural-fastfca@200:model=vae_audio/_pretrained/neural_fca.pt
OMP_NUM_THREADS=2 "$VAE_AUDIO" train neural-fca --config recipes/neural_fca/round1.yaml \
    trainer.overwrite=true "$@"
