#!/usr/bin/env bash
# Installs the system packages fusionforge needs when they are missing: ffmpeg (with ffprobe), and
# bubblewrap, the sandbox for model-written code (sft synth-vision-proxy, the rft `code` verifier).
# With --test it also installs chromium, the headless browser the audit tests render the HTML report in.
# Runs apt-get only when a tool is absent, so it is a no-op on a prepared machine.
set -euo pipefail

missing=()
command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
if [[ "${1:-}" == "--test" ]]; then
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
fi

if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "fusionforge needs: ${missing[*]}. Install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
