#!/usr/bin/env bash
# Peak memory of `vae-audio separate --chunk` on a long recording: writes an N-minute
# M-channel 16-bit WAV (the fixture mixture tiled, channels repeated with a delay), separates
# it in CHUNK-s chunks and prints the peak resident set size (GNU time's "Maximum resident set
# size") and the wall time.
# Usage: egs/bench/long_input_memory.sh [MINUTES=60] [MICS=8] [ITERS=2] [CHUNK=10]
set -euo pipefail
cd "$(dirname "$0")/../.."
MINUTES=${1:-60}; MICS=${2:-8}; ITERS=${3:-2}; CHUNK=${4:-10}
OUT=exp/long; mkdir -p "$OUT"
WAV="$OUT/long_${MINUTES}min_${MICS}ch.wav"
PY=${PY:-.venv/bin/python}
[ -f "$WAV" ] || "$PY" - "$WAV" "$MINUTES" "$MICS" <<'PYEOF'
import sys
import numpy as np
import soundfile as sf
path, minutes, mics = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
data, sr = sf.read("tests/fixtures/mixture/000000/mix.wav", dtype="float32")  # [S, 4]
cols = [np.roll(data[:, m % data.shape[1]], 7 * (m // data.shape[1])) for m in range(mics)]
block = np.stack(cols, 1) / max(1.0, float(np.abs(data).max()) * 1.01)
total = int(minutes * 60 * sr)
with sf.SoundFile(path + ".part", "w", sr, mics, "PCM_16", format="WAV") as fh:
    for start in range(0, total, block.shape[0]):
        fh.write(block[: total - start])
import os
os.replace(path + ".part", path)
PYEOF
/usr/bin/time -v .venv/bin/vae-audio separate "$WAV" -o "$OUT/sep" --method fastmnmf2 \
    --iters "$ITERS" --chunk "$CHUNK" --overwrite -q 2> "$OUT/time.txt"
echo "$MINUTES min, $MICS mics, --iters $ITERS, --chunk $CHUNK:"
grep -E "Maximum resident set size|Elapsed \(wall clock\)|Exit status" "$OUT/time.txt"
ls -l "$WAV"
