#!/usr/bin/env bash
# Sets up everything the project needs on a Debian/Ubuntu machine: system libraries for headless GL
# and a virtual screen, a virtual environment in .venv, the package (the segmentation models ship with it) and the
# sample clip. Safe to run again: each step is skipped when already done.
#   scripts/setup.sh            runtime only
#   scripts/setup.sh --dev      runtime + training (PyTorch, CPU build) + test tools
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[[ "${1:-}" == "--dev" ]] && extras="[train,dev]"

# libavahi-client3: the NDI runtime links it (mDNS); libasound2: python-rtmidi links it (MIDI)
system_packages=(libegl1 libgl1 libgl1-mesa-dri libegl-mesa0 xvfb xauth xdotool systemd libavahi-client3 libasound2)
# --dev: a real browser for the web panel's tests (Selenium drives Debian's chromium through chromium-driver)
[[ -n "$extras" ]] && system_packages+=(chromium chromium-driver)
missing=()
for p in "${system_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "setup: installing system packages: ${missing[*]}"
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt)
if [[ -n "$extras" ]] && ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # Exact pin first: a looser one pulls a multi-GB CUDA build; this one is the CPU wheel.
  "${pip[@]}" "torch==2.13.0"
fi
"${pip[@]}" -e ".${extras}"

.venv/bin/python scripts/fetch_segmenters.py  # only checks: the selfie models ship in models/segmenters
.venv/bin/python scripts/make_sample_clip.py
echo "setup: done (.venv ready)"
