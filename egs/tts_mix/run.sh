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
# shellcheck source=egs/common/mix_stages.sh
source egs/common/mix_stages.sh
parse_options "$mix_options hours" "$@"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

if [[ $stage -le 0 && $stop_stage -ge 0 ]]; then
  echo "stage 0: TTS corpus ($hours h)"
  $VAE_AUDIO corpus tts "$data/tts" --hours "$hours" --seed 0 --jobs "$jobs"
fi
# Stages 1-6 (egs/common/mix_stages.sh): simulated train/valid/test sets, each from a corpus
# index and split, then the speech prior from its train and valid manifests.
run_mix_stages \
  "$data/tts/train.jsonl" train "$data/tts/valid.jsonl" valid "$data/tts/valid.jsonl" valid \
  "$data/tts/train.jsonl" "$data/tts/valid.jsonl"
