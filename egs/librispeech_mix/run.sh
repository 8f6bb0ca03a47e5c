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
# shellcheck source=egs/common/mix_stages.sh
source egs/common/mix_stages.sh
parse_options "corpus $mix_options prior-config" "$@"

if [[ $stage -le 0 && $stop_stage -ge 0 ]]; then
  echo "stage 0: index LibriSpeech"
  if [[ -z $corpus || ! -d $corpus ]]; then
    echo "stage 0 needs --corpus DIR, the LibriSpeech folder (train-clean-100/, dev-clean/," \
      "test-clean/ ...); got '${corpus}'" >&2
    exit 2
  fi
  $VAE_AUDIO corpus scan "$corpus" "$data/corpus.jsonl" --sr 16000
fi
# Stages 1-6 (egs/common/mix_stages.sh): simulated train/valid/test sets, each from a corpus
# index and split, then the speech prior from its train and valid manifests.
run_mix_stages \
  "$data/corpus.jsonl" train "$data/corpus.jsonl" valid "$data/corpus.jsonl" test \
  "$data/corpus.train.jsonl" "$data/corpus.valid.jsonl"
