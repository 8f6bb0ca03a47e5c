#!/usr/bin/env bash
# Regenerates the shipped temporal speech prior vae_audio/_pretrained/speech_vae_conv16.pt
# (the multichannel VAE methods' default): speech-vae-conv's run (make_pretrained_conv.sh,
# 8 epochs in exp/speech_vae/conv_voices) copied and resumed to 16 epochs (4640 steps of
# 32 x 2 s). Training resumes exactly (README, "Reliability"), so the file is what 16 epochs
# in one run give. About 16 min on one thread of a busy 2-core CPU after the 8-epoch run.
set -euo pipefail
cd "$(dirname "$0")/../.."
VAE_AUDIO=${VAE_AUDIO:-.venv/bin/vae-audio}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ ! -f exp/speech_vae/conv_voices/checkpoints/last.ckpt ]; then
    bash recipes/speech_vae/make_pretrained_conv.sh
fi
rm -rf exp/speech_vae/conv_voices16
cp -r exp/speech_vae/conv_voices exp/speech_vae/conv_voices16
# the run continues with the resolved config it was started with (its voices included)
"$VAE_AUDIO" train speech-vae --config exp/speech_vae/conv_voices16/config.yaml \
    trainer.max_epochs=16 trainer.out_dir=exp/speech_vae/conv_voices16 \
    trainer.enable_progress_bar=false --resume
cp exp/speech_vae/conv_voices16/model.pt vae_audio/_pretrained/speech_vae_conv16.pt
chmod 644 vae_audio/_pretrained/speech_vae_conv16.pt
cat exp/speech_vae/conv_voices16/report.md
