#!/usr/bin/env bash
# Trains the any-microphone Neural FastFCA model (recipes/neural_fca/any_mics.yaml):
# 1 h TTS corpus (seed 0) + 150 rooms with an 8-mic circle (recipes/neural_fca/circle8.yaml,
# seed 0) -> 800 dynamic 4-s 2-talker mixtures labelled by the blind FastMNMF2 teacher on
# all 8 mics -> training on random 2- to 8-mic sub-arrays. Every stage resumes: re-running
# the script after an interruption continues where it stopped (the training from
# exp/neural_fca/any_mics/checkpoints/last.ckpt). Extra arguments go to `vae-audio train`.
# On one CPU core: about 15 min (rooms) + 40 min (teacher) + the training.
set -euo pipefail
cd "$(dirname "$0")/../.."
VAE_AUDIO=${VAE_AUDIO:-.venv/bin/vae-audio}
JOBS=${JOBS:-1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$JOBS}
PRESET=recipes/neural_fca/circle8.yaml
[ -f data/tts/train.jsonl ] || "$VAE_AUDIO" corpus tts data/tts --hours 1 --seed 0 --jobs "$JOBS"
[ -f data/rirs_circle8.pt ] || "$VAE_AUDIO" rir-bank data/rirs_circle8.pt --preset "$PRESET" \
    --n 150 --noise-sources 8 --seed 0 --jobs "$JOBS"
[ -f data/sim/circle8_valid10/manifest.jsonl ] || "$VAE_AUDIO" simulate data/sim/circle8_valid10 \
    --preset "$PRESET" --corpus data/tts/valid.jsonl --split valid --n 10 --seed 0 --jobs "$JOBS"
"$VAE_AUDIO" teacher-set data/teacher/fastmnmf2_circle8_4s --corpus data/tts/train.jsonl \
    --rir-bank data/rirs_circle8.pt --n 800 --seconds 4 --jobs "$JOBS"
if [ -f exp/neural_fca/any_mics/checkpoints/last.ckpt ]; then
  "$VAE_AUDIO" train neural-fca --config recipes/neural_fca/any_mics.yaml \
      --resume "$@"
else
  "$VAE_AUDIO" train neural-fca --config recipes/neural_fca/any_mics.yaml "$@"
fi
