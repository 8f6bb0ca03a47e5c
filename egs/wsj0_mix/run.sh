#!/usr/bin/env bash
# 2-talker reverberant noisy 4-mic mixtures of YOUR WSJ0 copy (CSR-I, LDC93S6A; nothing is
# downloaded).
#
#   stage 0: index the corpus (`vae-audio corpus scan`): si_tr_*/si_dt_*/si_et_* folders give
#            the train/valid/test splits          $data/corpus.{train,valid,test}.jsonl
#   stage 1: simulated sets (default preset), each from its own split
#                                                 $data/sim/{train,valid,test}/manifest.jsonl
#   stage 2: speech prior (frame-wise MLP VAE)    $exp/speech_vae/model.pt
#   stage 3: Neural FCA on the training mixtures  $exp/neural_fca/model.pt
#   stage 4: separate the test set with each of $methods   $exp/sep/<method>/<id>/src*.wav
#   stage 5: evaluate each method (SDR/SIR/SAR, SI-SDR)     $exp/eval/<method>/summary.md
#   stage 6: benchmark (`vae-audio bench`, if installed)    $exp/bench/
#
# Usage: egs/wsj0_mix/run.sh --corpus /path/to/wsj0 [--stage N] [--stop-stage N]
#        [--data DIR] [--exp DIR] [--n-train N] [--n-valid N] [--n-test N] [--jobs J]
#        [--methods LIST] [--spatial full|jd] [--nfca-config YAML] [--prior-config YAML]
#        [--device cpu|cuda]
# --corpus is the folder holding si_tr_s/, si_dt_05/, si_et_05/ ... as 16-kHz .wav files (the
# LDC discs ship NIST SPHERE .wv1: convert them first, e.g. `sph2pipe -f wav x.wv1 x.wav`).
# Unlike wsj0-2mix (anechoic, single-channel, 8 kHz) these mixtures are reverberant, noisy,
# 4-mic and 16 kHz (default preset). The defaults are GPU-scale (published Neural FCA
# settings, recipes/neural_fca/paper.yaml).
# Extra training overrides: SPEECH_EXTRA="trainer.max_epochs=100" NFCA_EXTRA="...".
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=0
stop_stage=6
corpus=""
data=data/wsj0_mix
exp=exp/wsj0_mix
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
  echo "stage 0: index WSJ0"
  if [[ -z $corpus || ! -d $corpus ]]; then
    echo "stage 0 needs --corpus DIR, the WSJ0 folder (si_tr_s/, si_dt_05/," \
      "si_et_05/ ... as .wav); got '${corpus}'" >&2
    exit 2
  fi
  $VAE_AUDIO corpus scan "$corpus" "$data/corpus.jsonl" --sr 16000
fi
# Stages 1-6 (egs/common/mix_stages.sh): simulated train/valid/test sets, each from a corpus
# index and split, then the speech prior from its train and valid manifests.
run_mix_stages \
  "$data/corpus.jsonl" train "$data/corpus.jsonl" valid "$data/corpus.jsonl" test \
  "$data/corpus.train.jsonl" "$data/corpus.valid.jsonl"
