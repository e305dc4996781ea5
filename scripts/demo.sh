#!/usr/bin/env bash
# The first command: set everything up, then play the default show.
# With a display: a window (Ctrl+Q quits). Without one: offscreen through EGL for 10 seconds, recording
# what was shown. With no camera attached the sample clip plays instead (a rehearsal).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bin=.venv/bin/installation
cmd=run
if ! compgen -G "/dev/video*" >/dev/null; then
  echo "demo: no camera found, rehearsing with the sample clip"
  cmd=rehearse
fi
if [[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]]; then
  exec "$bin" "$cmd" default --window
fi
mkdir -p out
"$bin" "$cmd" default --headless --seconds 10 --record out/demo.mp4 --stats out/demo-stats.json
echo "demo: the show's picture is in $(pwd)/out/demo.mp4 (stats: out/demo-stats.json)"
