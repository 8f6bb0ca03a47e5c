# Stages shared by the mixture recipes (egs/tts_mix, egs/librispeech_mix, egs/wsj0_mix).
# Sourced by their run.sh, which set: VAE_AUDIO, exp, jobs, methods, spatial, nfca_config,
# device, SPEECH_EXTRA, NFCA_EXTRA and optionally prior_config. Outputs: $exp/speech_vae, $exp/neural_fca,
# $exp/sep/<method>, $exp/eval/<method>, $exp/bench.
# shellcheck shell=bash disable=SC2154

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
