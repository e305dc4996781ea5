#!/usr/bin/env bash
# Installs the show from a folder made by scripts/build_wheelhouse.sh (a USB stick), with no network.
#
#   bash install_offline.sh [DEST]      DEST default: ~/installation
#
# Checks the copy (SHA256SUMS), copies the app to DEST, makes DEST/.venv and installs exactly the wheels
# in requirements.lock, then the app itself (editable, so shaders/, show_configs/ and models/ stay
# beside it and can be edited in place). Run again to update: DEST's own state is kept (shows' state
# lives in ~/.local/state/installation, never in DEST).
#
# System libraries can't come from pip: the machine needs Mesa's GL/EGL (libgl1, libegl1,
# libgl1-mesa-dri) and a desktop session; the script says which are missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$HOME/installation}
python=${PYTHON:-python3}
export PIP_CONFIG_FILE=/dev/null  # this machine's pip settings must not add other sources: the stick only

[[ -f "$here/requirements.lock" && -d "$here/wheels" && -d "$here/app" ]] ||
  { echo "install_offline: $here is not a wheelhouse (run scripts/build_wheelhouse.sh)" >&2; exit 2; }

if [[ -f "$here/SHA256SUMS" ]]; then
  echo "install_offline: checking the copy"
  (cd "$here" && sha256sum --quiet -c SHA256SUMS) ||
    { echo "install_offline: files are damaged (a bad copy or stick); copy the folder again" >&2; exit 1; }
fi

want=$(sed -n 's/.*\(cp3[0-9]*\)-.*/\1/p' <<<"$(ls "$here/wheels" | grep -m1 -- '-cp3[0-9]*-')" || true)
have=$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
if [[ -n "$want" && "$want" != "$have" ]]; then
  echo "install_offline: the wheels are for $want but $python is $have (set PYTHON=python3.x)" >&2
  exit 2
fi

missing=()
for p in libgl1 libegl1 libgl1-mesa-dri; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
((${#missing[@]})) && echo "install_offline: warning: system packages missing: ${missing[*]} (apt-get install them)"

echo "install_offline: copying the app to $dest"
mkdir -p "$dest"
cp -a "$here/app/." "$dest/"
[[ -x "$dest/.venv/bin/python" ]] || "$python" -m venv "$dest/.venv"
pip=("$dest/.venv/bin/python" -m pip install -q --disable-pip-version-check --no-index --find-links "$here/wheels")
"${pip[@]}" -r "$here/requirements.lock"
"${pip[@]}" --no-deps --no-build-isolation -e "$dest"

"$dest/.venv/bin/installation" --help >/dev/null
echo "install_offline: done. Next:"
echo "  $dest/.venv/bin/installation check $dest/show_configs/default.toml"
echo "  $dest/.venv/bin/installation install-service $dest/show_configs/default.toml"
