#!/usr/bin/env bash
# Regenerates the shipped speech prior vae_audio/_pretrained/speech_vae.pt:
# 1 h TTS corpus (seed 0) -> frame-wise MLP speech VAE (recipes/speech_vae/mlp.yaml).
# About 2 min for the corpus and 10 min of training on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
VAE_AUDIO=${VAE_AUDIO:-.venv/bin/vae-audio}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
[ -f data/tts/train.jsonl ] || "$VAE_AUDIO" corpus tts data/tts --hours 1 --seed 0 --jobs 2
"$VAE_AUDIO" train speech-vae --config recipes/speech_vae/mlp.yaml \
    trainer.out_dir=exp/speech_vae/mlp trainer.overwrite=true trainer.enable_progress_bar=false
cp exp/speech_vae/mlp/model.pt vae_audio/_pretrained/speech_vae.pt
chmod 644 vae_audio/_pretrained/speech_vae.pt
cat exp/speech_vae/mlp/report.md
