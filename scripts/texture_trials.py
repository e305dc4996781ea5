#!/usr/bin/env python3
"""Short comparison runs for docs/texture.md: the same look trained a few hundred steps with one thing
changed at a time, then measured by scripts/look_detail.py (detail on the held-back portrait against the
set's median, spike figure, flicker) with stills.

    nice -n 19 python scripts/texture_trials.py [NAME ...] [--look water] [--epochs 6] [--parallel 2]

Each trial trains into RUNS/trials/LOOK/NAME (resumed if it is there) and appends its figures to
RUNS/trials/LOOK/figures.jsonl; stills go to RUNS/trials/LOOK/NAME.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.train_looks import LOOKS, chain_toml, runs_root  # noqa: E402

# one thing changed from "base" (the shipped looks' settings: GAN + 100 x L1, 70x70 PatchGAN, batch norm,
# the look's own chain, bilinear resize decoder)
TRIALS: dict[str, dict[str, object]] = {
    "base": {},
    "l1_10": {"set": ["l1_weight=10"]},
    "l1_1": {"set": ["l1_weight=1"]},
    "patch16": {"set": ["d_layers=1"]},
    "patch34": {"set": ["d_layers=2"]},
    "instance": {"set": ["norm=instance"]},
    # two things at once, after the single changes: a local judge once L1 no longer drowns it
    "l1_10_patch16": {"set": ["l1_weight=10", "d_layers=1"]},
    "nearest": {"set": ["upsample=nearest"]},
    "no_dropout": {"set": ["dropout=false"]},
    # the input: Learning to See's soft grey picture (blur, no shrinking), and its edges
    "grey_blur": {"chain": [{"step": "flip", "flip": True}, {"step": "crop", "crop": "centre"}, {"step": "resize"},
                            {"step": "grey"}, {"step": "blur", "blur": 2.0},
                            {"step": "lerp_output", "output_lerp": 0.6}]},
    "grey_down4": {"chain": [{"step": "flip", "flip": True}, {"step": "crop", "crop": "centre"}, {"step": "resize"},
                             {"step": "grey"}, {"step": "downscale", "downscale": 4.0},
                             {"step": "lerp_output", "output_lerp": 0.6}]},
}


def trial(look: str, name: str, epochs: int, root: Path, photos: Path, extra: dict[str, object]) -> None:
    spec = LOOKS[look]
    out = root / name
    latest = out / "latest.pt"
    py = [sys.executable, "-m", "installation.training.cli", "train"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = open(root / f"{name}.log", "a")  # noqa: SIM115 - closed below, after the run
    if latest.is_file():
        cmd = [*py, "--resume", str(latest), "--epochs", str(epochs), "--no-progress"]
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / "chain.toml").write_text(chain_toml(extra.get("chain", spec["chain"])))  # type: ignore[arg-type]
        sets = ["width=16", "d_width=16", f"repeat={spec['repeat']}", "decay=0", *extra.get("set", [])]  # type: ignore[misc]
        cmd = [*py, str(photos / spec["set"]), "--from-targets", "--chain-file", str(out / "chain.toml"),
               "--out", str(out), "--epochs", str(epochs), "--size", "256", "--no-progress"]
        for s in sets:
            cmd += ["--set", s]
    subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "look_detail.py"), str(latest), "--json",
                          "--stills", str(root / f"{name}.png")], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    row = {"trial": name, **json.loads(res.stdout.strip().splitlines()[-1])}
    with open(root / "figures.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    log.close()
    print(f"{name}: portrait detail {row['grace_hopper']['detail']} ({100 * row.get('share', 0):.0f} % of "
          f"{row.get('photographs_median')}), spike {row['spike']}, flicker {row['flicker']}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", default=list(TRIALS))
    ap.add_argument("--look", default="water", choices=sorted(LOOKS))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--runs", type=Path, default=None, help="default: the looks' run folder (LOOK_RUNS)")
    args = ap.parse_args()
    base = args.runs or runs_root()
    root = base / "trials" / args.look
    root.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.parallel) as pool:
        jobs = [pool.submit(trial, args.look, n, args.epochs, root, base / "photos" / "sets", TRIALS[n])
                for n in args.names]
        for j in jobs:
            j.result()
    return 0


if __name__ == "__main__":
    sys.exit(main())
