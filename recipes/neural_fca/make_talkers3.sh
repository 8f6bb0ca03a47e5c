#!/usr/bin/env bash
# One Neural FastFCA model for 1 to 3 talkers on the default 4-mic array
# (recipes/neural_fca/talkers3.yaml): a 3-talker teacher set (dynamic 4-s mixtures of the
# 1-h TTS corpus in 150 default-preset rooms with 3 talker positions, seed 3) and a
# 1-talker one (the default rooms, seed 4), both labelled by `auto`, beside the 2-talker
# set of teacher round 2 (data/teacher/round2_auto, from make_round.sh 2), then 5000
# training steps on the three from the speech prior. No references are used. The teacher
# sets are resumable: re-running continues them, and a larger N extends them.
# Usage: [SET2=DIR] bash recipes/neural_fca/make_talkers3.sh [N3 [N1]] [training overrides...]
# (N3, N1: 3-talker and 1-talker mixtures, default 400 and 200; SET2: the 2-talker teacher
# set, default data/teacher/round2_auto, e.g. data/teacher/round1_neural200 from
# make_round.sh 1)
set -euo pipefail
cd "$(dirname "$0")/../.."
VAE_AUDIO=${VAE_AUDIO:-.venv/bin/vae-audio}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
N3=${1:-400}
N1=${2:-200}
shift $(($# < 2 ? $# : 2))
SET2=${SET2:-data/teacher/round2_auto}
[ -f "$SET2/teacher.json" ] || {
    echo "make_talkers3.sh: $SET2 is missing: run make_round.sh 2 first, or name another" \
        "2-talker teacher set as SET2=DIR" >&2
    exit 2
}
[ -f data/sim/bench10/manifest.jsonl ] || "$VAE_AUDIO" simulate data/sim/bench10 \
    --corpus data/tts/valid.jsonl --split valid --n 10 --seed 0 --jobs 2
[ -f data/rirs_talkers3.pt ] || "$VAE_AUDIO" rir-bank data/rirs_talkers3.pt \
    --preset recipes/neural_fca/talkers3_rooms.yaml --n 150 --noise-sources 8 --seed 3 --jobs 2
"$VAE_AUDIO" teacher-set data/teacher/talkers3_auto --corpus data/tts/train.jsonl \
    --rir-bank data/rirs_talkers3.pt --n "$N3" --seconds 4 --n-speakers 3 --seed 3 --jobs 2 \
    --teacher auto
"$VAE_AUDIO" teacher-set data/teacher/talkers1_auto --corpus data/tts/train.jsonl \
    --rir-bank data/rirs_default.pt --n "$N1" --seconds 4 --n-speakers 1 --seed 4 --jobs 2 \
    --teacher auto
OMP_NUM_THREADS=2 "$VAE_AUDIO" train neural-fca --config recipes/neural_fca/talkers3.yaml \
    "data.teacher_set=[$SET2, data/teacher/talkers3_auto, data/teacher/talkers1_auto]" \
    trainer.overwrite=true "$@"
