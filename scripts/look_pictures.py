#!/usr/bin/env python3
"""The pictures of docs/looks.md: for each look, stills of camera picture -> model input -> output (on
a frame of the sample clip and on a held-back portrait), and a short animated preview recorded by the
real show (`installation rehearse --record`).

    python scripts/look_pictures.py [default leaves bloom] [--out docs/looks]

Everything is kept small (a 64-colour palette, 160 px tiles), so the committed files stay a few
hundred KB in all.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TILE = 160
MODELS = ROOT / "models"


def frame_of_clip(clip: Path, second: float) -> np.ndarray:
    cap = cv2.VideoCapture(str(clip))
    cap.set(cv2.CAP_PROP_POS_MSEC, second * 1000)
    ok, bgr = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"can't read {clip} at {second} s")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def tile(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(rgb, (TILE, TILE), interpolation=cv2.INTER_AREA)


def still_row(model: object, picture: np.ndarray) -> np.ndarray:
    from installation.training.quality import model_input

    chain = model.card.chain  # type: ignore[attr-defined]
    camera, _ = chain.view(picture)  # the mirror and the crop only: aligned with the model's picture
    a = model_input(chain, picture)
    y = model.infer(a)  # type: ignore[attr-defined]
    return np.hstack([tile(camera), tile(a), tile(y)])


def save_png(rgb: np.ndarray, path: Path, colours: int = 128) -> None:
    Image.fromarray(rgb).quantize(colours, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def stills(look: str, clip: Path, out: Path) -> Path:
    from installation.inference.models import load_model
    from installation.training.quality import held_back_photographs

    model = load_model(MODELS / look, providers="cpu")
    rows = [still_row(model, frame_of_clip(clip, 6.0)), still_row(model, held_back_photographs()["grace_hopper"])]
    path = out / f"{look}-stills.png"
    save_png(np.vstack(rows), path)
    return path


def preview(look: str, out: Path, seconds: float = 3.0, fps: int = 6, side: int = 128) -> Path:
    """A GIF of what the default show, playing this look, shows of the sample clip."""
    show = (ROOT / "show_configs" / "default.toml").read_text()
    show = show.replace('path = "../models/default"', f'path = "{MODELS / look}"')
    with tempfile.TemporaryDirectory() as tmp:
        show_file = Path(tmp) / f"{look}.toml"
        show_file.write_text(show)
        video = Path(tmp) / "shown.mp4"
        subprocess.run([str(ROOT / ".venv/bin/installation"), "rehearse", str(show_file), "--headless",
                        "--seconds", str(seconds + 1), "--record", str(video), "--no-osc", "--fresh",
                        "--set", "hud/show=false", "--state", str(Path(tmp) / "state")], check=True, cwd=ROOT)
        cap = cv2.VideoCapture(str(video))
        src_fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        frames, i = [], 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            t = i / src_fps
            i += 1
            if t < 1.0 or len(frames) >= seconds * fps or (i - 1) % max(1, round(src_fps / fps)):
                continue  # the first second is the model warming up
            h, w = bgr.shape[:2]
            s = min(h, w)
            sq = bgr[(h - s) // 2:(h + s) // 2, (w - s) // 2:(w + s) // 2]
            frames.append(cv2.cvtColor(cv2.resize(sq, (side, side), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    if not frames:
        raise SystemExit(f"the recording of {look} has no frames after its first second")
    first = Image.fromarray(np.vstack(frames[::max(1, len(frames) // 4)])).quantize(48)
    # no dithering: its noise changes every frame, and the GIF would store it all
    images = [Image.fromarray(f).quantize(palette=first, dither=Image.Dither.NONE) for f in frames]
    path = out / f"{look}-preview.gif"
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0,
                   optimize=True)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("looks", nargs="*", default=["default", "leaves", "bloom"])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "looks")
    ap.add_argument("--clip", type=Path, default=None, help="default: the sample clip")
    ap.add_argument("--models", type=Path, default=None, help="where the model folders are (default models/)")
    ap.add_argument("--no-preview", action="store_true")
    args = ap.parse_args()
    global MODELS
    MODELS = (args.models or MODELS).resolve()
    from installation.media.sample import ensure_sample_clip

    clip = args.clip or ensure_sample_clip()
    args.out.mkdir(parents=True, exist_ok=True)
    for look in args.looks:
        paths = [stills(look, clip, args.out)]
        if not args.no_preview:
            paths.append(preview(look, args.out))
        for p in paths:
            print(f"{look}: {p} ({p.stat().st_size / 1000:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
