#!/usr/bin/env bash
# 2-talker reverberant noisy 4-mic mixtures of the offline TTS corpus, end to end.
# Nothing is downloaded: speech comes from flite / espeak-ng / festival (scripts/system-deps.sh).
#
#   stage 0: TTS corpus                      $data/tts/{train,valid}.jsonl
#   stage 1: simulated sets (default preset) $data/sim/{train,valid,test}/manifest.jsonl
#            train from the corpus' train split; valid and test from its valid split
#            (held-out voices + 5 % of the others' utterances), different seeds
#   stage 2: speech prior (frame-wise MLP VAE) $exp/speech_vae/model.pt
#   stage 3: Neural FCA on the training mixtures  $exp/neural_fca/model.pt
#   stage 4: separate the test set with each of $methods   $exp/sep/<method>/<id>/src*.wav
#   stage 5: evaluate each method (SDR/SIR/SAR, SI-SDR)     $exp/eval/<method>/summary.md
#   stage 6: benchmark (`vae-audio bench`, if installed)    $exp/bench/
#
# Usage: egs/tts_mix/run.sh [--stage N] [--stop-stage N] [--data DIR] [--exp DIR]
#        [--hours H] [--n-train N] [--n-valid N] [--n-test N] [--jobs J]
#        [--methods LIST] [--spatial full|jd] [--nfca-config YAML] [--device cpu|cuda]
# Small CPU defaults, Neural FastFCA (--spatial jd). Estimated from measured per-item costs on
# 2 cores: simulation ~30 min (3-25 s per mixture), speech prior ~10 min, Neural FastFCA
# ~25 min (50 epochs x 100 steps x 0.28 s); --spatial full costs ~11x more per training step
# (recipes/neural_fca/README.md, "Compute"). On a GPU use e.g.
#   --hours 10 --n-train 5000 --spatial full --nfca-config recipes/neural_fca/paper.yaml
# Extra training overrides: SPEECH_EXTRA="trainer.max_epochs=100" NFCA_EXTRA="...".
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=0
stop_stage=6
data=data/tts_mix
exp=exp/tts_mix
hours=1
n_train=400
n_valid=20
n_test=20
jobs=2
methods=neural-fca,fastmnmf2
spatial=jd
nfca_config=recipes/neural_fca/cpu.yaml
device=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --exp) exp=$2; shift 2 ;;
    --hours) hours=$2; shift 2 ;;
    --n-train) n_train=$2; shift 2 ;;
    --n-valid) n_valid=$2; shift 2 ;;
    --n-test) n_test=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    --spatial) spatial=$2; shift 2 ;;
    --nfca-config) nfca_config=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
VAE_AUDIO=${VAE_AUDIO:-vae-audio}
SPEECH_EXTRA=${SPEECH_EXTRA:-}
NFCA_EXTRA=${NFCA_EXTRA:-}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# shellcheck source=egs/common/mix_stages.sh
source egs/common/mix_stages.sh

if [[ $stage -le 0 && $stop_stage -ge 0 ]]; then
  echo "stage 0: TTS corpus ($hours h)"
  $VAE_AUDIO corpus tts "$data/tts" --hours "$hours" --seed 0 --jobs "$jobs"
fi
if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  echo "stage 1: simulated mixtures"
  $VAE_AUDIO simulate "$data/sim/train" --corpus "$data/tts/train.jsonl" --split train \
    --n "$n_train" --seed 0 --jobs "$jobs"
  $VAE_AUDIO simulate "$data/sim/valid" --corpus "$data/tts/valid.jsonl" --split valid \
    --n "$n_valid" --seed 1 --jobs "$jobs"
  $VAE_AUDIO simulate "$data/sim/test" --corpus "$data/tts/valid.jsonl" --split valid \
    --n "$n_test" --seed 2 --jobs "$jobs"
fi
if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
  echo "stage 2: speech prior"
  train_speech_prior "$data/tts/train.jsonl" "$data/tts/valid.jsonl"
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
