#!/usr/bin/env bash
# Digits with known affine factors (scikit-learn's bundled digits, randomly warped; nothing
# is downloaded): affine-transform VAE, conditional VAE and JMVAE.
#
#   stage 0: data preview PNG (upright sources and their warps)
#   stage 1: affine VAE       stage 2: CVAE       stage 3: JMVAE-kl
#   stage 4: Markdown table of every run's metrics.json
#   stage 5: affine-normalisation benchmark (bench.py: angle spread before/after + grid PNG)
#
# Usage: egs/digits/run.sh [--stage N] [--stop-stage N] [--out DIR] [--steps N]
#        [--accelerator auto|cpu|gpu]
# Local MNIST instead: EXTRA="data.name=mnist data.root=/path/to/mnist".
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=0
stop_stage=5
out=exp/digits
steps=3000
accelerator=auto
# shellcheck source=egs/common/image_stages.sh
source egs/common/image_stages.sh
parse_options "$image_options" "$@"

if [[ $stage -le 0 && $stop_stage -ge 0 ]]; then
  echo "stage 0: data preview"
  $PYTHON -m vae_audio.image.report preview digits --out "$out/data_preview.png"
fi
if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then echo "stage 1: affine VAE"; train affine_vae; fi
if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then echo "stage 2: CVAE"; train cvae; fi
if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then echo "stage 3: JMVAE"; train jmvae; fi
if [[ $stage -le 4 && $stop_stage -ge 4 ]]; then
  echo "stage 4: results table"
  results_table affine_vae cvae jmvae
fi
if [[ $stage -le 5 && $stop_stage -ge 5 ]]; then
  echo "stage 5: affine normalisation benchmark"
  $PYTHON egs/digits/bench.py --out "$out/bench" --accelerator "$accelerator"
fi
