# Command-line parsing shared by the egs/*/run.sh recipes. Sourced after the recipe has set
# its defaults, e.g.
#   stage=0; stop_stage=6; data=data/x
#   parse_options "stage stop-stage data" "$@"
# shellcheck shell=bash

parse_options() {  # "OPT ..." ARGS...: each `--OPT VALUE` in ARGS sets $OPT (dashes read as _)
  local opts=$1 opt var
  shift
  while [[ $# -gt 0 ]]; do
    var=""
    for opt in $opts; do
      if [[ $1 == "--$opt" ]]; then var=${opt//-/_}; fi
    done
    if [[ -z $var ]]; then echo "unknown option $1" >&2; exit 2; fi
    printf -v "$var" '%s' "$2"
    shift 2
  done
}
