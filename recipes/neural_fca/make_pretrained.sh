#!/usr/bin/env bash
# Regenerates the shipped Neural FastFCA model vae_audio/_pretrained/neural_fca.pt:
# 1 h TTS corpus (seed 0) + 150 default-preset rooms (seed 0) -> 800 dynamic 4-s 2-talker
# mixtures labelled by the blind FastMNMF2 teacher -> recipes/neural_fca/shipped.yaml
# (decoder initialised from the shipped speech prior).
# About 2 min (corpus) + 10 min (rooms) + 15 min (teacher) + the training, on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
VAE_AUDIO=${VAE_AUDIO:-.venv/bin/vae-audio}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
[ -f data/tts/train.jsonl ] || "$VAE_AUDIO" corpus tts data/tts --hours 1 --seed 0 --jobs 2
[ -f data/rirs_default.pt ] || "$VAE_AUDIO" rir-bank data/rirs_default.pt --n 150 \
    --noise-sources 8 --seed 0 --jobs 2
[ -f data/sim/bench10/manifest.jsonl ] || "$VAE_AUDIO" simulate data/sim/bench10 \
    --corpus data/tts/valid.jsonl --split valid --n 10 --seed 0 --jobs 2
"$VAE_AUDIO" teacher-set data/teacher/fastmnmf2_4s --corpus data/tts/train.jsonl \
    --rir-bank data/rirs_default.pt --n 800 --seconds 4 --jobs 2
"$VAE_AUDIO" train neural-fca --config recipes/neural_fca/shipped.yaml \
    trainer.overwrite=true "$@"
cp exp/neural_fca/shipped/model.pt vae_audio/_pretrained/neural_fca.pt
chmod 644 vae_audio/_pretrained/neural_fca.pt
