#!/usr/bin/env bash
# Installs the Debian packages the toolkit uses when they are missing:
# the TTS engines that synthesise the embedded speech corpus, and libsndfile.
set -euo pipefail
need=()
command -v flite >/dev/null 2>&1 || need+=(flite)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
else
    echo "missing system packages: ${need[*]}" >&2
    echo "install them with: sudo apt-get install ${need[*]}" >&2
    echo "(tests that need them are skipped until then)" >&2
fi
