#!/usr/bin/env bash
# Regenerates the shipped temporal speech prior vae_audio/_pretrained/speech_vae_conv.pt
# (single-channel vae-nmf's default): the many-voice corpora without festival
# (make_corpus_multi.sh with FESTIVAL=0) -> recipes/speech_vae/conv_multi.yaml on those
# corpora for 8 epochs (2320 steps of 32 x 2 s). About 20 min for the corpora and 16.5 min
# of training on one thread of a busy 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
VAE_AUDIO=${VAE_AUDIO:-.venv/bin/vae-audio}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
FESTIVAL=0 bash recipes/speech_vae/make_corpus_multi.sh
VOICES='[data/tts/train.jsonl, data/tts10/flite/train.jsonl, data/tts10/espeak_en/train.jsonl,
  data/tts10/espeak_world/train.jsonl, {manifest: data/prompts/train.jsonl, repeat: 4}]'
"$VAE_AUDIO" train speech-vae --config recipes/speech_vae/conv_multi.yaml \
    "data.train_manifest=$VOICES" trainer.max_epochs=8 trainer.out_dir=exp/speech_vae/conv_voices \
    trainer.overwrite=true trainer.enable_progress_bar=false
cp exp/speech_vae/conv_voices/model.pt vae_audio/_pretrained/speech_vae_conv.pt
chmod 644 vae_audio/_pretrained/speech_vae_conv.pt
cat exp/speech_vae/conv_voices/report.md
