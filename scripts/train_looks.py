#!/usr/bin/env python3
"""Train, resume and export the shipped looks, each from one themed set of licensed photographs.

    python scripts/fetch_photos.py                 # the photographs and their licences (runs/photos)
    python scripts/train_looks.py train water      # runs/looks/water; again to resume from its checkpoint
    python scripts/train_looks.py export water     # models/default (the main look) with the full card

Every look is trained the Learning to See way, from target pictures alone: each input is made on the
fly from a random zoom (100-130 %), crop and flip of a photograph by the look's own chain, the chain
the show then runs on the camera. The decoder upsamples by bilinear resize + 3x3 conv (no
checkerboard). A checkpoint is written every epoch, so a stopped run goes on with `train LOOK` again.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The chains were chosen by looking at what each does to a portrait, a person with a tripod, a room
# with a motorbike and a photograph of the set (docs/looks.md): grey at 1/12 keeps a body's shape
# and lets water fill it; edges give leaves lines to grow along; four grey levels give petals areas.
# The Canny thresholds (20/60, after a 1.5 px blur) give the soft-focus leaf photographs about as many
# edge pixels (4-20 %) as a portrait or a room (5-15 %); the defaults (50/150, 2 px) gave the leaves
# 0-3 %, and a model that learns from nearly black inputs paints one flat green.
LOOKS: dict[str, dict[str, Any]] = {
    "water": {  # the main look: the default show's model, so its folder is models/default
        "folder": "default", "set": "water", "width": 16, "epochs": 10, "repeat": 24,
        "description": "water and sky at dusk: a soft grey picture of the room (1/12 size) repainted in the "
                       "blues and pinks of nine lake, sea and sky photographs",
        "chain": [{"step": "flip", "flip": True}, {"step": "crop", "crop": "centre"}, {"step": "resize"},
                  {"step": "grey"}, {"step": "downscale", "downscale": 12.0},
                  {"step": "lerp_output", "output_lerp": 0.6}],
    },
    "leaves": {
        # repeat 15 (105 crops an epoch), half of the first run's 30: 10 epochs of 30 grew a period-4 ripple
        # (spike figure 14.4 on the cameraman, 12.8 on the room); half the steps, same schedule, keeps it away
        "set": "leaves", "width": 12, "epochs": 10, "repeat": 15,
        "description": "green: the room's edges (Canny) grown into leaves, grass, moss and forest from seven "
                       "photographs",
        "chain": [{"step": "flip", "flip": True}, {"step": "crop", "crop": "centre"}, {"step": "resize"},
                  {"step": "blur", "blur": 1.5}, {"step": "canny", "canny_low": 20.0, "canny_high": 60.0},
                  {"step": "lerp_input", "input_lerp": 0.3},
                  {"step": "lerp_output", "output_lerp": 0.5}],
    },
    "bloom": {
        "set": "bloom", "width": 12, "epochs": 10, "repeat": 40,
        "description": "petals and fallen leaves: the room in four grey levels, repainted in the warm colours of "
                       "five macro photographs of flowers and autumn leaves",
        "chain": [{"step": "flip", "flip": True}, {"step": "crop", "crop": "centre"}, {"step": "resize"},
                  {"step": "grey"}, {"step": "blur", "blur": 2.0}, {"step": "posterize", "posterize": 4},
                  {"step": "lerp_output", "output_lerp": 0.5}],
    },
}
D_WIDTH = 16
UPSAMPLE = "bilinear"
# One training thread per run: two OpenMP threads spin-waiting on a shared, busy core were slower
# (scripts/train_default_model.py measured it); looks can train side by side instead.
THREADS = 1
HOLDOUT = "grace_hopper"  # the portrait the card's spike figure is measured on (see installation.training.quality)


def chain_toml(spec: list[dict[str, Any]]) -> str:
    lines = []
    for step in spec:
        lines.append("[[preprocess]]")
        for k, v in step.items():
            lines.append(f"{k} = {json.dumps(v)}")
        lines.append("")
    return "\n".join(lines)


def run(cmd: list[str], threads: int = 0) -> None:
    print("+ " + shlex.join(cmd), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)


def train(look: str, photos: Path, runs: Path, threads: int) -> None:
    spec = LOOKS[look]
    run_dir = runs / look
    latest = run_dir / "latest.pt"
    py = [sys.executable, "-m", "installation.training.cli"]  # the same commands as `installation`
    if latest.is_file():
        # --epochs: a run resumed before its learning rate starts to fall (half-way) may be lengthened, and
        # is then the same run as a fresh one of that length (same crops, same dropout: the RNG is saved)
        run([*py, "train", "--resume", str(latest), "--epochs", str(spec["epochs"]), "--no-progress"], threads)
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    chain_file = run_dir / "chain.toml"
    chain_file.write_text(chain_toml(spec["chain"]))
    run([*py, "train", str(photos / "sets" / spec["set"]), "--from-targets", "--chain-file", str(chain_file),
         "--out", str(run_dir), "--epochs", str(spec["epochs"]), "--width", str(spec["width"]), "--size", "256",
         "--set", f"d_width={D_WIDTH}", "--set", f"repeat={spec['repeat']}", "--set", f"upsample={UPSAMPLE}",
         "--no-progress"], threads)


def bench(model_dir: Path, threads: int = 2, n: int = 200) -> float:
    """Median ms for one 256x256 frame through ONNX Runtime on `threads` CPU threads."""
    import numpy as np

    os.environ["INSTALLATION_ORT_THREADS"] = str(threads)
    from installation.inference.models import load_model

    model = load_model(model_dir, providers="cpu")
    h, w = model.card.size
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    for _ in range(20):
        model.infer(img)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        model.infer(img)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def export(look: str, photos: Path, runs: Path, models: Path) -> None:
    from installation.inference.models import read_card
    from installation.training.quality import model_spike_figure

    spec = LOOKS[look]
    out = models / spec.get("folder", look)
    run_dir = runs / look
    py = [sys.executable, "-m", "installation.training.cli"]
    run([*py, "export", str(run_dir / "latest.pt"), "--out", str(out), "--name", look])
    record = json.loads((photos / "sets" / f"{spec['set']}.json").read_text())
    ms = bench(out)
    spikes = {name: round(v, 2) for name, v in model_spike_figure(out).items()}
    card = read_card(out / "model.toml")
    card.description = spec["description"]
    pictures = record["pictures"]
    card.provenance = {
        "data": f"{len(pictures)} photographs, set '{spec['set']}' ({record['title']}) from Debian packages: "
                + "; ".join(f"{p['id']} by {p['author']} ({p['licence']})" for p in pictures),
        "photographs": [{"id": p["id"], "author": p["author"], "licence": p["licence"], "package": p["package"],
                         "package_version": p["version"], "file": p["file"], "size": p["size"]}
                        for p in pictures],
        # a list, not a table: the card writer leaves keys bare, and "plasma/Grey" is no bare TOML key
        "data_left_out": [{"id": k, "why": v} for k, v in record["left_out"].items()],
        "fetch": "python scripts/fetch_photos.py",
        "reproduce": f"python scripts/fetch_photos.py && python scripts/train_looks.py train {look} && "
                     f"python scripts/train_looks.py export {look}",
        **card.provenance,
        "inference_ms_256_cpu_2_threads": round(ms, 2),
        "inference_machine": f"{os.cpu_count()}-core CPU (shared, busy), ONNX Runtime CPUExecutionProvider, "
                             "2 threads",
        "spike_figure": spikes,
        "spike_figure_on": "held-back photographs no set uses: grace_hopper (matplotlib sample data), camera and "
                           "motorcycle_left (scikit-image); installation.training.quality.spike_figure",
    }
    # the last epoch's samples' checkerboard figure rides in the losses row; on the card it has its own key
    final = card.provenance.get("final_losses", {})
    if "spike" in final:
        card.provenance["final_losses"] = {k: v for k, v in final.items() if k != "spike"}
        card.provenance["final_sample_spike_figure"] = final["spike"]
    _lengthened(card.provenance, run_dir / "latest.pt")
    card.save(out)
    size_mb = (out / "model.onnx").stat().st_size / 1e6
    print(f"{look}: {out} ({size_mb:.1f} MB), {ms:.2f} ms a 256x256 frame on 2 CPU threads, spike figure {spikes}")


def _lengthened(prov: dict[str, Any], checkpoint: Path) -> None:
    """A run lengthened on resume keeps its first command in the checkpoint; the card gives the command
    that makes the same run in one go, and says what happened."""
    import re

    import torch

    epochs = torch.load(checkpoint, map_location="cpu", weights_only=True)["config"]["epochs"]
    cmd = prov.get("train_command", "")
    m = re.search(r"--epochs (\d+)", cmd)
    if m and int(m[1]) != epochs:
        prov["train_command"] = cmd.replace(m[0], f"--epochs {epochs}")
        prov["train_history"] = (f"started with --epochs {m[1]}, lengthened to {epochs} on resume before the "
                                 "learning rate began to fall (half-way): the same run as a fresh one of that "
                                 "length, since the checkpoint keeps the crops' seed and the RNG state")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("train", "export", "chain"))
    ap.add_argument("looks", nargs="*", default=list(LOOKS), help=f"of {', '.join(LOOKS)} (default: all)")
    ap.add_argument("--photos", type=Path, default=Path("runs/photos"), help="scripts/fetch_photos.py's folder")
    ap.add_argument("--runs", type=Path, default=Path("runs/looks"))
    ap.add_argument("--models", type=Path, default=Path("models"))
    ap.add_argument("--threads", type=int, default=THREADS, help="CPU threads for training (OMP_NUM_THREADS)")
    args = ap.parse_args()
    for look in args.looks:
        if look not in LOOKS:
            ap.error(f"unknown look {look!r}; known: {', '.join(LOOKS)}")
        if args.action == "train":
            train(look, args.photos, args.runs, args.threads)
        elif args.action == "export":
            export(look, args.photos, args.runs, args.models)
        else:
            with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
                f.write(chain_toml(LOOKS[look]["chain"]))
            print(f.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
