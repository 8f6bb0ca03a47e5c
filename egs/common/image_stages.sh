# Options and stage helpers shared by the image recipes (egs/digits, egs/dsprites). Sourced by
# their run.sh after their defaults: stage, stop_stage, out, steps, accelerator. Outputs:
# $out/NAME (one training run per recipe name) and $out/results.md.
# shellcheck shell=bash disable=SC2154

# shellcheck source=egs/common/options.sh
source egs/common/options.sh
# Options every image recipe takes (`parse_options "$image_options" "$@"`).
image_options="stage stop-stage out steps accelerator"
PYTHON=${PYTHON:-python}
VAE_AUDIO=${VAE_AUDIO:-vae-audio}
EXTRA=${EXTRA:-}

train() {  # train NAME: recipes/image_vae/NAME.yaml into $out/NAME
  # Overrides go before --config (argparse reads the trailing list with the recipe name).
  # shellcheck disable=SC2086
  $VAE_AUDIO train image-vae "trainer.out_dir=$out/$1" "trainer.max_steps=$steps" \
    "trainer.accelerator=$accelerator" trainer.overwrite=true $EXTRA \
    --config "recipes/image_vae/$1.yaml"
}

results_table() {  # NAME... -> $out/results.md from the finished runs' $out/NAME/metrics.json
  local name runs=()
  for name in "$@"; do
    [[ -f "$out/$name/metrics.json" ]] && runs+=("$out/$name")
  done
  if [[ ${#runs[@]} -eq 0 ]]; then
    echo "no finished run under $out; run the training stages first" >&2
    exit 1
  fi
  $PYTHON -m vae_audio.image.report table "${runs[@]}" --out "$out/results.md"
}
