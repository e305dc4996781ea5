#!/usr/bin/env bash
# Builds a folder to carry to a gallery machine on a USB stick, so the show installs with no network:
#   OUT/wheels/            every wheel the runtime needs, at the versions tested together (constraints.txt)
#   OUT/app/               the project: installation/, shaders/, show_configs/, models/ (with the
#                          segmentation models), scripts/, docs/
#   OUT/requirements.lock  exactly what is in wheels/ (name==version), installed as is
#   OUT/install_offline.sh the installer (scripts/install_offline.sh), and OUT/SHA256SUMS to check the copy
#
#   scripts/build_wheelhouse.sh [OUT] [--with-train] [--dry-run]
#     OUT           default: wheelhouse/
#     --with-train  add PyTorch for training on the gallery machine (large; not needed to play a show)
#     --dry-run     copy the app and models and write the plan, but download nothing
#
# Wheels are fetched for the Python and platform running this script (PYTHON, default .venv/bin/python):
# build on a machine like the gallery's (same Python minor version, x86_64 Linux).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

out=wheelhouse
train=0
dry=0
for arg in "$@"; do
  case "$arg" in
    --with-train) train=1 ;;
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "build_wheelhouse: unknown option $arg" >&2; exit 2 ;;
    *) out=$arg ;;
  esac
done
python=${PYTHON:-.venv/bin/python}
[[ -x "$python" ]] || python=$(command -v python3)
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The runtime's requirements, read from pyproject.toml (the one list), plus what an offline editable
# install needs to build: setuptools and wheel.
reqs="$out/requirements.in"
"$python" - "$train" > "$reqs" <<'PY'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = list(project["dependencies"])
if sys.argv[1] == "1":
    deps += project.get("optional-dependencies", {}).get("train", [])
deps += ["setuptools>=68", "wheel"]
print("\n".join(d.split("#")[0].strip() for d in deps))  # markers kept: pip skips what this platform lacks
PY
constraints=()
[[ -f constraints.txt ]] && constraints=(-c constraints.txt)

# The app: tracked files and new ones not ignored, so what ships is what the repository holds.
echo "build_wheelhouse: copying the app to $out/app"
rm -rf "$out/app"
mkdir -p "$out/app"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard -- installation shaders show_configs scripts docs \
      pyproject.toml README.md constraints.txt |
    while IFS= read -r -d '' f; do
      [[ -f "$f" ]] && { mkdir -p "$out/app/$(dirname "$f")"; cp -p "$f" "$out/app/$f"; }
    done
else
  cp -a installation shaders show_configs scripts docs pyproject.toml README.md "$out/app/"
  [[ -f constraints.txt ]] && cp -p constraints.txt "$out/app/"
fi

# Models are data, usually ignored by git: copied as they are, less engine caches built for another GPU.
if [[ ! -f models/segmenters/selfie_segmentation.tflite ]]; then
  if ((dry)); then
    echo "build_wheelhouse: (dry run) would fetch the segmentation models"
  else
    "$python" scripts/fetch_segmenters.py --force
  fi
fi
if [[ -d models ]]; then
  mkdir -p "$out/app/models"
  (cd models && find . -type f ! -path '*/.trt_cache/*' ! -name '*.tmp' -print0) |
    while IFS= read -r -d '' f; do
      mkdir -p "$out/app/models/$(dirname "$f")"
      cp -p "models/$f" "$out/app/models/$f"
    done
fi
cp -p scripts/install_offline.sh "$out/install_offline.sh"
chmod +x "$out/install_offline.sh"

pip=("$python" -m pip --disable-pip-version-check)
if ((dry)); then
  echo "build_wheelhouse: (dry run) would download into $out/wheels:"
  echo "  ${pip[*]} download --only-binary=:all: -d $out/wheels ${constraints[*]} -r $reqs"
  sed 's/^/    /' "$reqs"
  echo "build_wheelhouse: dry run done; $(find "$out/app" -type f | wc -l) app files in $out/app"
  exit 0
fi

echo "build_wheelhouse: downloading wheels (binary only, for $("$python" -c 'import sys; print(sys.version.split()[0])'))"
mkdir -p "$out/wheels"
"${pip[@]}" download -q --only-binary=:all: -d "$out/wheels" "${constraints[@]}" -r "$reqs"

# requirements.lock: exactly the downloaded set, so the gallery installs what was tested here.
"$python" - "$out/wheels" > "$out/requirements.lock" <<'PY'
import re, sys
from pathlib import Path
seen = {}
for w in sorted(Path(sys.argv[1]).glob("*.whl")):
    name, version = w.name.split("-")[:2]
    seen[re.sub(r"[-_.]+", "-", name).lower()] = version
print("\n".join(f"{n}=={v}" for n, v in sorted(seen.items())))
PY

(cd "$out" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum > SHA256SUMS)
echo "build_wheelhouse: $(ls "$out/wheels" | wc -l) wheels, $(du -sh "$out" | cut -f1) in $out"
echo "  copy the folder to a stick; on the gallery machine: bash install_offline.sh [DEST]"
