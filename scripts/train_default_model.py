#!/usr/bin/env python3
"""Reproduce models/default end to end, offline, on a CPU: data, training, export, a speed check.

The data are six photographs that ship inside scikit-image (`skimage.data`), each public domain or
CC0 by its own docstring:

    astronaut          Eileen Collins, NASA Great Images: "released into the public domain"
    coffee             Rachel Michetti for Pikolo Espresso Bar: "CC0 by the photographer"
    chelsea            Stefan van der Walt: "CC0 by the photographer"
    rocket             DSCOVR launch, SpaceX: "released in the public domain"
    hubble_deep_field  NASA: "may be freely used in the public domain"
    retina             Mikael Häggström, Wikimedia Commons: "CC0 1.0 Universal Public Domain Dedication"

The model learns these pictures from themselves, the Learning to See way: each training input is
made on the fly from a random zoom/crop/flip of a photograph by the `grey_blur_downscale` chain
(grey, shrunk 24x, regrown), the same chain the show runs on the camera. Live, a person in a room
becomes a soft grey field, and the model paints it in the colours and shapes of those six photographs.

    python scripts/train_default_model.py            # about 15-20 minutes on a 2-core CPU
    python scripts/train_default_model.py --epochs 2 --out-model /tmp/try   # a quick look
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PHOTOS = {
    "astronaut": "NASA, public domain",
    "coffee": "Rachel Michetti, CC0",
    "chelsea": "Stefan van der Walt, CC0",
    "rocket": "SpaceX, public domain",
    "hubble_deep_field": "NASA, public domain",
    "retina": "Mikael Häggström, CC0",
}

# What models/default was trained with; the defaults reproduce it.
EPOCHS = 24
WIDTH = 16  # 256x256 in about 9 ms on two CPU cores through ONNX Runtime (width 8: about 5 ms)
REPEAT = 40  # each photograph 40 times an epoch, each time zoomed, cropped and flipped anew
# One training thread: on a machine that is also running other work, two OpenMP threads spin-waiting
# for each other's share of a busy core made the run several times slower, not faster.
THREADS = 1
CHAIN = "grey_blur_downscale"


def write_photos(folder: Path) -> list[Path]:
    import cv2
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in PHOTOS:
        rgb = getattr(skimage.data, name)()
        path = folder / f"{name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def run(cmd: list[str], threads: int = 0) -> None:
    print("+ " + shlex.join(cmd), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)


def bench(model_dir: Path, threads: int = 2, n: int = 200) -> float:
    """Median ms for one 256x256 frame through ONNX Runtime on `threads` CPU threads."""
    import numpy as np

    os.environ["INSTALLATION_ORT_THREADS"] = str(threads)
    from installation.models import load_model

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--width", type=int, default=WIDTH)
    ap.add_argument("--repeat", type=int, default=REPEAT)
    ap.add_argument("--run", type=Path, default=Path("runs/default"), help="run folder")
    ap.add_argument("--data", type=Path, default=Path("runs/default_data"), help="where the photographs go")
    ap.add_argument("--out-model", type=Path, default=Path("models/default"))
    ap.add_argument("--threads", type=int, default=THREADS, help="CPU threads for training (OMP_NUM_THREADS)")
    ap.add_argument("--resume", action="store_true", help="go on from RUN/latest.pt")
    args = ap.parse_args()

    write_photos(args.data)
    py = [sys.executable, "-m", "installation.training.cli"]  # the same commands as `installation`
    if args.resume and (args.run / "latest.pt").is_file():
        run([*py, "train", "--resume", str(args.run / "latest.pt"), "--no-progress"], args.threads)
    else:
        run([*py, "train", str(args.data), "--from-targets", "--chain", CHAIN, "--out", str(args.run),
             "--epochs", str(args.epochs), "--width", str(args.width), "--size", "256",
             "--set", "d_width=16", "--set", f"repeat={args.repeat}", "--no-progress"], args.threads)
    run([*py, "export", str(args.run / "latest.pt"), "--out", str(args.out_model), "--name", "default"])

    from installation.models import read_card

    ms = bench(args.out_model)
    card = read_card(args.out_model / "model.toml")
    card.description = ("Learning to See-style default: paints a soft grey picture of the room in the colours of "
                        "six public-domain/CC0 photographs from scikit-image")
    card.provenance = {
        "data": "scikit-image sample photographs (skimage.data): "
                + "; ".join(f"{k} ({v})" for k, v in PHOTOS.items()),
        "reproduce": "python scripts/train_default_model.py",
        **card.provenance,
        "inference_ms_256_cpu_2_threads": round(ms, 2),
        "inference_machine": f"{os.cpu_count()}-core CPU, ONNX Runtime CPUExecutionProvider, 2 threads",
    }
    card.save(args.out_model)
    size_mb = (args.out_model / "model.onnx").stat().st_size / 1e6
    print(f"default model: {args.out_model} ({size_mb:.1f} MB), {ms:.2f} ms a 256x256 frame on 2 CPU threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
