#!/usr/bin/env bash
# Iterated blind teachers for the shipped Neural FastFCA model (round 0: the shipped model,
# trained on FastMNMF2's labels by make_pretrained.sh). Round k renders new dynamically mixed
# 4-s 2-talker mixtures (seed k; the corpus and rooms of round 0), labels them with the best
# blind separator after round k-1, and trains the round-k model from the round-(k-1)
# weights with recipes/neural_fca/round1.yaml:
#   round 1: teacher = the round-0 model refined on each mixture (200 steps on its latents)
#   round 2: teacher = auto with the round-1 model (the model averaged with FastMNMF2 fits)
#   round 3: teacher = auto with the round-2 model
# No references are used. The teacher set is resumable: re-running continues it, and a
# larger N extends it.
# Usage: bash recipes/neural_fca/make_round.sh ROUND [N] [training overrides...]
# (N: mixtures of the round's teacher set; by default 400 in round 1, 512 in rounds 2-3, each
# trained for about 2000 steps: 20 and 16 epochs of N / 4 batches)
set -euo pipefail
cd "$(dirname "$0")/../.."
VAE_AUDIO=${VAE_AUDIO:-.venv/bin/vae-audio}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ROUND=${1:?usage: make_round.sh ROUND [N] [overrides...]}
N=${2:-}
shift $(($# < 2 ? $# : 2))
case "$ROUND" in
    1) PREVIOUS=vae_audio/_pretrained/neural_fca.pt
       SET=data/teacher/round1_neural200
       TEACHER="neural-fastfca@200:model=$PREVIOUS"
       N=${N:-400}
       EPOCHS=20 ;;
    2) PREVIOUS=exp/neural_fca/round1/model.pt
       SET=data/teacher/round2_auto
       TEACHER="auto:model=$PREVIOUS"
       N=${N:-512}
       EPOCHS=16 ;;
    3) PREVIOUS=exp/neural_fca/round2/model.pt
       SET=data/teacher/round3_auto
       TEACHER="auto:model=$PREVIOUS"
       N=${N:-512}
       EPOCHS=16 ;;
    *) echo "make_round.sh: rounds 1 to 3 are defined; got $ROUND" >&2; exit 2 ;;
esac
[ -f "$PREVIOUS" ] || { echo "make_round.sh: $PREVIOUS is missing: run round $((ROUND - 1)) first" >&2; exit 2; }
[ -f data/tts/train.jsonl ] || "$VAE_AUDIO" corpus tts data/tts --hours 1 --seed 0 --jobs 2
[ -f data/rirs_default.pt ] || "$VAE_AUDIO" rir-bank data/rirs_default.pt --n 150 \
    --noise-sources 8 --seed 0 --jobs 2
[ -f data/sim/bench10/manifest.jsonl ] || "$VAE_AUDIO" simulate data/sim/bench10 \
    --corpus data/tts/valid.jsonl --split valid --n 10 --seed 0 --jobs 2
"$VAE_AUDIO" teacher-set "$SET" --corpus data/tts/train.jsonl --rir-bank data/rirs_default.pt \
    --n "$N" --seconds 4 --seed "$ROUND" --jobs 2 --teacher "$TEACHER"
OMP_NUM_THREADS=2 "$VAE_AUDIO" train neural-fca --config recipes/neural_fca/round1.yaml \
    init="$PREVIOUS" data.teacher_set="$SET" trainer.out_dir="exp/neural_fca/round$ROUND" \
    trainer.max_epochs="$EPOCHS" trainer.overwrite=true "$@"
