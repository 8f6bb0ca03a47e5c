#!/usr/bin/env bash
# Disentanglement on procedural dSprites (generated on the fly, nothing is downloaded).
#
#   stage 0: data preview PNG
#   stage 1: VAE (beta = 1)            stage 4: beta-TCVAE (beta = 6, MSS)
#   stage 2: beta-VAE, H form (beta=4) stage 5: InfoVAE (MMD)
#   stage 3: beta-VAE, B form (capacity)
#   stage 6: Markdown table of every run's metrics.json
#   stage 7: the VAE / beta-VAE / beta-TCVAE benchmark (bench.py, same budget for all)
#
# Usage: egs/dsprites/run.sh [--stage N] [--stop-stage N] [--out DIR] [--steps N]
#        [--accelerator auto|cpu|gpu]
# Small CPU defaults; on a GPU raise --steps (e.g. 100000) and pass model.network=conv in
# EXTRA (e.g. EXTRA="model.network=conv data.batch_size=64").
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=0
stop_stage=7
out=exp/dsprites
steps=3000
accelerator=auto
# shellcheck source=egs/common/image_stages.sh
source egs/common/image_stages.sh
parse_options "$image_options" "$@"

if [[ $stage -le 0 && $stop_stage -ge 0 ]]; then
  echo "stage 0: data preview"
  $PYTHON -m vae_audio.image.report preview dsprites --out "$out/data_preview.png"
fi
if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then echo "stage 1: VAE"; train vae; fi
if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then echo "stage 2: beta-VAE (H)"; train beta_vae_h; fi
if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then echo "stage 3: beta-VAE (B)"; train beta_vae_b; fi
if [[ $stage -le 4 && $stop_stage -ge 4 ]]; then echo "stage 4: beta-TCVAE"; train beta_tcvae; fi
if [[ $stage -le 5 && $stop_stage -ge 5 ]]; then echo "stage 5: InfoVAE"; train infovae; fi
if [[ $stage -le 6 && $stop_stage -ge 6 ]]; then
  echo "stage 6: results table"
  results_table vae beta_vae_h beta_vae_b beta_tcvae infovae
fi
if [[ $stage -le 7 && $stop_stage -ge 7 ]]; then
  echo "stage 7: benchmark"
  $PYTHON egs/dsprites/bench.py --out "$out/bench" --accelerator "$accelerator"
fi
