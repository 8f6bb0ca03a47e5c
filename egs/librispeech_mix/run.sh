#!/usr/bin/env bash
# 2-talker reverberant noisy 4-mic mixtures of YOUR LibriSpeech copy (nothing is downloaded).
#
#   stage 0: index the corpus (`vae-audio corpus scan`): train-*/dev-*/test-* folders give
#            the train/valid/test splits          $data/corpus.{train,valid,test}.jsonl
#   stage 1: simulated sets (default preset), each from its own split
#                                                 $data/sim/{train,valid,test}/manifest.jsonl
#   stage 2: speech prior (frame-wise MLP VAE)    $exp/speech_vae/model.pt
#   stage 3: Neural FCA on the training mixtures  $exp/neural_fca/model.pt
#   stage 4: separate the test set with each of $methods   $exp/sep/<method>/<id>/src*.wav
#   stage 5: evaluate each method (SDR/SIR/SAR, SI-SDR)     $exp/eval/<method>/summary.md
#   stage 6: benchmark (`vae-audio bench`, if installed)    $exp/bench/
#
# Usage: egs/librispeech_mix/run.sh --corpus /path/to/LibriSpeech [--stage N] [--stop-stage N]
#        [--data DIR] [--exp DIR] [--n-train N] [--n-valid N] [--n-test N] [--jobs J]
#        [--methods LIST] [--spatial full|jd] [--nfca-config YAML] [--prior-config YAML]
#        [--device cpu|cuda]
# --corpus is the folder holding e.g. train-clean-100/, dev-clean/, test-clean/ (FLAC). The
# defaults are GPU-scale (published Neural FCA settings, recipes/neural_fca/paper.yaml).
# Extra training overrides: SPEECH_EXTRA="trainer.max_epochs=100" NFCA_EXTRA="...".
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=0
stop_stage=6
corpus=""
data=data/librispeech_mix
exp=exp/librispeech_mix
n_train=20000
n_valid=500
n_test=1000
jobs=8
methods=neural-fca,fastmnmf2
spatial=full
nfca_config=recipes/neural_fca/paper.yaml
prior_config=recipes/speech_vae/mlp.yaml
device=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --corpus) corpus=$2; shift 2 ;;
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --exp) exp=$2; shift 2 ;;
    --n-train) n_train=$2; shift 2 ;;
    --n-valid) n_valid=$2; shift 2 ;;
    --n-test) n_test=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    --spatial) spatial=$2; shift 2 ;;
    --nfca-config) nfca_config=$2; shift 2 ;;
    --prior-config) prior_config=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
VAE_AUDIO=${VAE_AUDIO:-vae-audio}
SPEECH_EXTRA=${SPEECH_EXTRA:-}
NFCA_EXTRA=${NFCA_EXTRA:-}
# shellcheck source=egs/common/mix_stages.sh
source egs/common/mix_stages.sh

if [[ $stage -le 0 && $stop_stage -ge 0 ]]; then
  echo "stage 0: index LibriSpeech"
  if [[ -z $corpus || ! -d $corpus ]]; then
    echo "stage 0 needs --corpus DIR, the LibriSpeech folder (train-clean-100/, dev-clean/," \
      "test-clean/ ...); got '${corpus}'" >&2
    exit 2
  fi
  $VAE_AUDIO corpus scan "$corpus" "$data/corpus.jsonl" --sr 16000
fi
if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  echo "stage 1: simulated mixtures"
  $VAE_AUDIO simulate "$data/sim/train" --corpus "$data/corpus.jsonl" --split train \
    --n "$n_train" --seed 0 --jobs "$jobs"
  $VAE_AUDIO simulate "$data/sim/valid" --corpus "$data/corpus.jsonl" --split valid \
    --n "$n_valid" --seed 1 --jobs "$jobs"
  $VAE_AUDIO simulate "$data/sim/test" --corpus "$data/corpus.jsonl" --split test \
    --n "$n_test" --seed 2 --jobs "$jobs"
fi
if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
  echo "stage 2: speech prior"
  train_speech_prior "$data/corpus.train.jsonl" "$data/corpus.valid.jsonl"
fi
if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then
  echo "stage 3: Neural FCA ($spatial spatial model)"
  train_neural_fca "$data/sim/train/manifest.jsonl" "$data/sim/valid/manifest.jsonl"
fi
if [[ $stage -le 4 && $stop_stage -ge 4 ]]; then
  echo "stage 4: separate the test set"
  separate_set "$data/sim/test/manifest.jsonl"
fi
if [[ $stage -le 5 && $stop_stage -ge 5 ]]; then
  echo "stage 5: evaluate"
  evaluate_set "$data/sim/test"
fi
if [[ $stage -le 6 && $stop_stage -ge 6 ]]; then
  echo "stage 6: benchmark"
  bench_set "$data/sim/test"
fi
