# Options and stages 1-6 shared by the mixture recipes (egs/tts_mix, egs/librispeech_mix,
# egs/wsj0_mix). Sourced by their run.sh after their defaults: stage, stop_stage, data, exp,
# n_train, n_valid, n_test, jobs, methods, spatial, nfca_config, device and optionally
# prior_config. Outputs: $data/sim/{train,valid,test}, $exp/speech_vae, $exp/neural_fca,
# $exp/sep/<method>, $exp/eval/<method>, $exp/bench.
# shellcheck shell=bash disable=SC2154

# shellcheck source=egs/common/options.sh
source egs/common/options.sh
# Options every mixture recipe takes (`parse_options "$mix_options ..." "$@"`).
mix_options="stage stop-stage data exp n-train n-valid n-test jobs methods spatial"
mix_options+=" nfca-config device"
VAE_AUDIO=${VAE_AUDIO:-vae-audio}
SPEECH_EXTRA=${SPEECH_EXTRA:-}
NFCA_EXTRA=${NFCA_EXTRA:-}

device_args() {  # --device for `separate`/`bench` when one was asked for
  if [[ -n $device ]]; then echo "--device $device"; fi
}

accelerator_overrides() {  # Lightning accelerator for the training stages
  case $device in
    cuda) echo "trainer.accelerator=gpu" ;;
    cpu) echo "trainer.accelerator=cpu" ;;
  esac
}

neural_method() {  # the method name of the trained Neural FCA model
  if [[ $spatial == jd ]]; then echo neural-fastfca; else echo neural-fca; fi
}

method_list() {  # $methods with neural-fca/neural-fastfca replaced by the trained variant
  local m out=()
  for m in ${methods//,/ }; do
    case $m in neural-fca | neural-fastfca) out+=("$(neural_method)") ;; *) out+=("$m") ;; esac
  done
  echo "${out[@]}"
}

train_speech_prior() {  # TRAIN.jsonl VALID.jsonl -> $exp/speech_vae/model.pt
  # Overrides go before --config (argparse reads the trailing list with the recipe name).
  # shellcheck disable=SC2046,SC2086
  $VAE_AUDIO train speech-vae "data.train_manifest=$1" "data.valid_manifest=$2" \
    "trainer.out_dir=$exp/speech_vae" trainer.overwrite=true $(accelerator_overrides) \
    $SPEECH_EXTRA --config "${prior_config:-recipes/speech_vae/mlp.yaml}"
}

train_neural_fca() {  # TRAIN/manifest.jsonl VALID/manifest.jsonl -> $exp/neural_fca/model.pt
  # shellcheck disable=SC2046,SC2086
  $VAE_AUDIO train neural-fca "prior=$exp/speech_vae/model.pt" "data.train_manifest=$1" \
    "data.valid_manifest=$2" "model.spatial=$spatial" "trainer.out_dir=$exp/neural_fca" \
    trainer.overwrite=true $(accelerator_overrides) $NFCA_EXTRA --config "$nfca_config"
}

separate_set() {  # MANIFEST -> $exp/sep/<method>/<id>/src*.wav (finished mixtures are kept)
  local m model=()
  for m in $(method_list); do
    model=()
    [[ $m == neural-* ]] && model=(--model "$exp/neural_fca/model.pt")
    echo "  $m"
    # shellcheck disable=SC2046
    $VAE_AUDIO separate "$1" -o "$exp/sep/$m" --method "$m" "${model[@]}" $(device_args)
  done
}

evaluate_set() {  # SETDIR -> $exp/eval/<method>/{results.csv,summary.md,summary.json}
  local m
  for m in $(method_list); do
    echo "  $m"
    $VAE_AUDIO evaluate --est "$exp/sep/$m" --ref "$1" --out "$exp/eval/$m" --jobs "$jobs"
  done
}

bench_set() {  # SETDIR -> $exp/bench (every method on every mixture, same budget, RTF, memory)
  if ! $VAE_AUDIO bench --help > /dev/null 2>&1; then
    echo "  'vae-audio bench' is not available in this installation; skipped"
    return 0
  fi
  local list model=()
  list=$(method_list)
  list="mixture,${list// /,},oracle-mwf"
  [[ $list == *neural-* ]] && model=(--model "$exp/neural_fca/model.pt")
  # shellcheck disable=SC2046
  $VAE_AUDIO bench --set "$1" --methods "$list" "${model[@]}" --out "$exp/bench" \
    --jobs "$jobs" $(device_args)
}

simulate_sets() {  # CORPUS SPLIT (train) CORPUS SPLIT (valid) CORPUS SPLIT (test)
  # -> $data/sim/{train,valid,test}/manifest.jsonl, seeds 0, 1, 2
  $VAE_AUDIO simulate "$data/sim/train" --corpus "$1" --split "$2" \
    --n "$n_train" --seed 0 --jobs "$jobs"
  $VAE_AUDIO simulate "$data/sim/valid" --corpus "$3" --split "$4" \
    --n "$n_valid" --seed 1 --jobs "$jobs"
  $VAE_AUDIO simulate "$data/sim/test" --corpus "$5" --split "$6" \
    --n "$n_test" --seed 2 --jobs "$jobs"
}

run_mix_stages() {  # the 6 args of simulate_sets, then PRIOR_TRAIN.jsonl PRIOR_VALID.jsonl
  if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
    echo "stage 1: simulated mixtures"
    simulate_sets "$1" "$2" "$3" "$4" "$5" "$6"
  fi
  if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
    echo "stage 2: speech prior"
    train_speech_prior "$7" "$8"
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
}
