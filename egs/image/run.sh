#!/usr/bin/env bash
# Generative image models on procedural dSprites and the affine digits (nothing is downloaded):
# VQ-VAE, VAE-GAN and the mixture-prior VAE, then the sample-quality benchmark.
#
#   stage 1: VQ-VAE          stage 2: VAE-GAN          stage 3: mixture-prior VAE
#   stage 4: sample-quality benchmark (sample_quality.py: VAE, beta-VAE, VQ-VAE, VAE-GAN and
#            the mixture-prior VAE on both data sets; FD, precision/recall, reconstruction
#            error, clustering accuracy, sample grids)
#
# Usage: egs/image/run.sh [--stage N] [--stop-stage N] [--out DIR] [--steps N]
#        [--bench-steps N] [--accelerator auto|cpu|gpu] [--seed N]
# --steps: optimiser steps per recipe in stages 1-3 (the VAE-GAN takes 3 per batch);
# --bench-steps: training batches per model in stage 4. Stages 1-3 train on dSprites;
# EXTRA="data.name=digits model.num_components=10" switches them to the digits.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=1
stop_stage=4
out=exp/image
steps=3000
bench_steps=1500
accelerator=auto
seed=0
# shellcheck source=egs/common/image_stages.sh
source egs/common/image_stages.sh
parse_options "$image_options bench-steps seed" "$@"

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then echo "stage 1: VQ-VAE"; train vq_vae; fi
if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then echo "stage 2: VAE-GAN"; train vae_gan; fi
if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then echo "stage 3: mixture-prior VAE"; train gmm_vae; fi
if [[ $stage -le 4 && $stop_stage -ge 4 ]]; then
  echo "stage 4: sample-quality benchmark"
  $PYTHON egs/image/sample_quality.py --out "$out/sample_quality" --steps "$bench_steps" \
    --seed "$seed" --accelerator "$accelerator"
fi
