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
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --accelerator) accelerator=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
PYTHON=${PYTHON:-python}
VAE_AUDIO=${VAE_AUDIO:-vae-audio}
EXTRA=${EXTRA:-}

train() {  # train NAME: recipes/image_vae/NAME.yaml into $out/NAME
  # Overrides go before --config (argparse reads the trailing list with the recipe name).
  # shellcheck disable=SC2086
  $VAE_AUDIO train image-vae "trainer.out_dir=$out/$1" "trainer.max_steps=$steps" \
    "trainer.accelerator=$accelerator" trainer.overwrite=true $EXTRA \
    --config "recipes/image_vae/$1.yaml"
}

if [[ $stage -le 0 && $stop_stage -ge 0 ]]; then
  echo "stage 0: data preview"
  $PYTHON -m vae_audio.image.report preview digits --out "$out/data_preview.png"
fi
if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then echo "stage 1: affine VAE"; train affine_vae; fi
if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then echo "stage 2: CVAE"; train cvae; fi
if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then echo "stage 3: JMVAE"; train jmvae; fi
if [[ $stage -le 4 && $stop_stage -ge 4 ]]; then
  echo "stage 4: results table"
  runs=()
  for name in affine_vae cvae jmvae; do
    [[ -f "$out/$name/metrics.json" ]] && runs+=("$out/$name")
  done
  if [[ ${#runs[@]} -eq 0 ]]; then
    echo "no finished run under $out; run the training stages first" >&2
    exit 1
  fi
  $PYTHON -m vae_audio.image.report table "${runs[@]}" --out "$out/results.md"
fi
if [[ $stage -le 5 && $stop_stage -ge 5 ]]; then
  echo "stage 5: affine normalisation benchmark"
  $PYTHON egs/digits/bench.py --out "$out/bench" --accelerator "$accelerator"
fi
