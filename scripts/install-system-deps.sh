#!/usr/bin/env bash
# Installs the system packages fusionforge needs (ffmpeg with ffprobe) when they are missing.
# Runs apt-get only when a tool is absent, so it is a no-op on a prepared machine.
set -euo pipefail

missing=()
command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)

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
