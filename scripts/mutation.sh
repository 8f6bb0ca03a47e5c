#!/usr/bin/env bash
# Mutation testing of the core math with cosmic-ray: each module below is mutated one
# operator at a time (a flipped sign, a swapped comparison, a changed constant, a removed
# statement, ...) and its tests are run against every mutant; a mutant the tests do not
# catch "survives". Each module runs on its own copy of the committed tree (HEAD) under
# exp/mutation/tree/<name> (cosmic-ray edits the files it mutates), so the working tree is
# never touched and two invocations with different modules can run side by side.
#
#   make mutation                 # every module (hours on 2 CPU cores)
#   bash scripts/mutation.sh likelihoods objective   # some modules, by short name
#   bash scripts/mutation.sh --retest inference      # only the survivors of the last run,
#                                                    # against the current tests
#   bash scripts/mutation.sh --resume fastmnmf       # finish an interrupted run (the
#                                                    # mutants without an outcome yet)
#
# Reports: exp/mutation/<name>.txt (cr-report: every surviving mutant with its diff),
# exp/mutation/<name>.survivors.txt (one line per survivor: line, operator, change) and
# exp/mutation/summary.md (mutants, killed, survived per module).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$PWD/.venv/bin/python}
BIN=$(dirname "$PY")
OUT=$PWD/exp/mutation
"$PY" -c "import cosmic_ray" 2>/dev/null || "$PY" -m pip install --quiet "cosmic-ray>=8.3,<9"

# short name | module | tests that should catch its mutants | seconds per test run at most
MODULES=(
  "likelihoods|vae_audio/core/likelihoods.py|tests/core/test_likelihoods.py tests/core/test_objectives.py|120"
  "objective|vae_audio/neural_fca/objective.py|tests/neural_fca/test_model.py tests/neural_fca/test_spatial.py|300"
  "iss|vae_audio/neural_fca/iss.py|tests/neural_fca/test_spatial.py|300"
  "inference|vae_audio/neural_fca/inference.py|tests/neural_fca/test_inference.py tests/neural_fca/test_inference_details.py tests/neural_fca/test_inactive_slots.py tests/bench/test_method_options.py|400"
  "speech_model|vae_audio/speech/model.py|tests/speech/test_model.py tests/speech/test_model_details.py|300"
  "linalg|vae_audio/separation/linalg.py|tests/separation/test_linalg.py tests/separation/test_packed.py tests/separation/test_fastmnmf_workspace.py|120"
  "packed|vae_audio/separation/packed.py|tests/separation/test_packed.py tests/separation/test_fca.py|120"
  "fca|vae_audio/separation/fca.py|tests/separation/test_fca.py tests/separation/test_fca_details.py|300"
  "fastmnmf|vae_audio/separation/fastmnmf.py|tests/separation/test_fastmnmf.py tests/separation/test_fastmnmf_workspace.py tests/separation/test_fastmnmf_details.py|400"
  "vae_fca|vae_audio/separation/vae_fca.py|tests/separation/test_vae_fca.py tests/separation/test_vae_fca_details.py|400"
)

mode=new
case "${1:-}" in --retest) mode=retest; shift ;; --resume) mode=resume; shift ;; esac
selected=("$@")
mkdir -p "$OUT"
for row in "${MODULES[@]}"; do
  IFS='|' read -r name module tests timeout <<< "$row"
  if [ ${#selected[@]} -gt 0 ] && [[ ! " ${selected[*]} " == *" $name "* ]]; then continue; fi
  cfg="$OUT/$name.toml"; db="$OUT/$name.sqlite"; tree="$OUT/tree/$name"
  rm -rf "$tree" && mkdir -p "$tree"
  git archive HEAD | tar -x -C "$tree"  # the committed tree: commit new tests before --retest
  cat > "$cfg" <<TOML
[cosmic-ray]
module-path = "$module"
timeout = $timeout
excluded-modules = []
test-command = "env PYTHONPATH=$tree OMP_NUM_THREADS=1 $PY -m pytest -x -q -p no:cacheprovider $tests"

[cosmic-ray.distributor]
name = "local"

# '|' occurs in these modules only in type annotations, which 'from __future__ import
# annotations' never evaluates: replacing it is an equivalent mutant.
[cosmic-ray.filters.operators-filter]
exclude-operators = ["core/ReplaceBinaryOperator_BitOr_.*"]
TOML
  echo "== $name: $module"
  if [ $mode != new ]; then  # exec runs the mutants without an outcome
    [ -f "$db" ] || { echo "no earlier run of $name ($db); run without --$mode first" >&2; exit 2; }
    [ $mode = retest ] && "$PY" -c "import sqlite3, sys; con = sqlite3.connect(sys.argv[1]); con.execute(\"DELETE FROM work_results WHERE test_outcome = 'SURVIVED'\"); con.commit()" "$db"
    (cd "$tree" && "$BIN/cosmic-ray" exec "$cfg" "$db")
  else
    rm -f "$db"
    (cd "$tree" && "$BIN/cosmic-ray" init "$cfg" "$db" && "$BIN/cr-filter-operators" "$db" "$cfg" \
      && "$BIN/cosmic-ray" exec "$cfg" "$db")
  fi
  "$BIN/cr-report" --show-pending "$db" > "$OUT/$name.txt" || true
  "$PY" - "$db" > "$OUT/$name.survivors.txt" <<'PYEOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
rows = con.execute(
    "SELECT s.start_pos_row, s.operator_name, r.diff FROM mutation_specs s JOIN work_results r"
    " ON s.job_id = r.job_id WHERE r.test_outcome = 'SURVIVED' ORDER BY s.start_pos_row"
).fetchall()
for row, operator, diff in rows:
    changed = [line[0] + " " + line[1:].strip() for line in diff.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    print(f"L{row} {operator.split('/')[-1]}: " + " | ".join(changed))
PYEOF
  "$PY" - "$db" "$module" > "$OUT/$name.summary" <<'PYEOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
rows = con.execute(
    "SELECT r.worker_outcome, r.test_outcome, COUNT(*) FROM work_results r GROUP BY 1, 2"
).fetchall()
counts = {}
for worker, test, n in rows:
    key = "skipped" if str(worker).upper() == "SKIPPED" else str(test).lower()
    counts[key] = counts.get(key, 0) + n
killed, survived = counts.get("killed", 0), counts.get("survived", 0)
total = sum(counts.values()) - counts.get("skipped", 0)
pending = con.execute("SELECT COUNT(*) FROM work_items").fetchone()[0] - sum(counts.values())
print(f"| {sys.argv[2]} | {total} | {killed} | {survived} | {total - killed - survived} | {pending} |")
PYEOF
done
{  # every module run so far, the latest run of each
  echo "| module | mutants run | killed | survived | other (timeout, error) | not run yet |"
  echo "|---|---|---|---|---|---|"
  for row in "${MODULES[@]}"; do
    IFS='|' read -r name _ <<< "$row"
    if [ -f "$OUT/$name.summary" ]; then cat "$OUT/$name.summary"; fi
  done
} > "$OUT/summary.md"
cat "$OUT/summary.md"
