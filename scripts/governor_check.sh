#!/usr/bin/env bash
# The frame-budget governor's target (issue 22, point 3): the person show and the default show at the
# 30 fps sample clip, `rehearse --headless --seconds 12 --stats`, three runs each: presented fps >= 28.5
# and capture->present p95 <= 66 ms in every run. Prints one row a run (fps, p50/p95, what the governor
# gave up and when) and a verdict. Run it on an idle machine; it names the CPU and the load it ran under.
#
#   scripts/governor_check.sh [RUNS] [SECONDS]     (defaults: 3 runs, 12 s)
#   GOVERNOR=off scripts/governor_check.sh          the same runs with the governor off (the "before" rows)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
seconds=${2:-12}
py=.venv/bin/python
[ -x "$py" ] || py=python3
out=$(mktemp -d /tmp/governor_check.XXXXXX)
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores," \
     "flags: $(grep -o -w -E 'avx2|avx512f|avx512_vnni|avx_vnni' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); governor: ${GOVERNOR:-as the show files say}; files in $out"
fail=0
for show in person default; do
  file=show_configs/$show.toml
  if [ "${GOVERNOR:-}" = off ]; then  # a copy of the show with the governor off, beside the original
    file=$out/$show.toml
    sed -e 's#"\.\./models/#"'"$PWD"'/models/#' -e '/^\[governor\]/,/^\[/s/^mode = "auto"/mode = "off"/' \
        "show_configs/$show.toml" > "$file"
    grep -q '^mode = "off"' "$file" || { echo "no [governor] mode line in show_configs/$show.toml"; exit 2; }
  fi
  for i in $(seq 1 "$runs"); do
    stats=$out/$show-$i.json
    $py -m installation.cli rehearse "$file" --headless --seconds "$seconds" --stats "$stats" \
        --state "$out/state-$show" --no-osc > "$out/$show-$i.log" 2>&1
    $py - "$stats" "$show" "$i" <<'EOF' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
g = d["health"]["governor"]
fps, lat = d["fps_mean"], d["latency_ms"]
ok = fps >= 28.5 and lat["p95"] <= 66.0
steps = "; ".join(f"{h['t_s']:.1f}s {h['dir']} {h['step']}" for h in g["history"]) or "no change"
print(f"{sys.argv[2]:>7} run {sys.argv[3]}: {fps:5.1f} fps  latency p50 {lat['p50']:6.1f} p95 {lat['p95']:6.1f} ms  "
      f"dropped {d['dropped_total']:3d}  workers {d['inference_workers']}  {'ok ' if ok else 'MISS'}  "
      f"given up: {', '.join(g['given_up']) or 'nothing'} ({steps})")
sys.exit(0 if ok else 1)
EOF
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$fail" = 0 ]; then echo "target met in every run"; else echo "target missed in at least one run"; fi
exit $fail
