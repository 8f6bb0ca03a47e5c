#!/usr/bin/env bash
# Installs the Debian packages the toolkit uses when they are missing:
# the TTS engines that synthesise the embedded speech corpus, libsndfile, and the
# recorded Asterisk prompts (G.722) of `vae-audio corpus prompts`.
set -euo pipefail
need=()
command -v flite >/dev/null 2>&1 || need+=(flite)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
# A prompt package counts as installed when its folder holds .g722 files (the -wav and
# -gsm packages share the folder).
sounds=/usr/share/asterisk/sounds
for pair in en:en_US_f_Allison es:es_MX_f_Allison fr:fr_CA_f_June; do
    lang=${pair%%:*} folder=${pair#*:}
    compgen -G "$sounds/$folder/*.g722" >/dev/null || need+=("asterisk-core-sounds-$lang-g722")
done
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
