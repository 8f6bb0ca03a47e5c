#!/usr/bin/env bash
# Regenerates the shipped Neural FastFCA model vae_audio/_pretrained/neural_fca.pt:
# 1 h TTS corpus (seed 0) + 150 default-preset rooms (seed 0) -> dynamic 2-talker mixtures
# -> recipes/neural_fca/shipped.yaml (decoder initialised from the shipped speech prior).
# About 2 min (corpus) + 10 min (rooms) + the training, on 2 CPU cores with one thread.
set -euo pipefail
cd "$(dirname "$0")/../.."
VAE_AUDIO=${VAE_AUDIO:-.venv/bin/vae-audio}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
[ -f data/tts/train.jsonl ] || "$VAE_AUDIO" corpus tts data/tts --hours 1 --seed 0 --jobs 2
[ -f data/rirs_default.pt ] || "$VAE_AUDIO" rir-bank data/rirs_default.pt --n 150 \
    --noise-sources 8 --seed 0 --jobs 2
"$VAE_AUDIO" train neural-fca --config recipes/neural_fca/shipped.yaml \
    trainer.overwrite=true "$@"
cp exp/neural_fca/shipped/model.pt vae_audio/_pretrained/neural_fca.pt
chmod 644 vae_audio/_pretrained/neural_fca.pt
