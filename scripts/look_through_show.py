#!/usr/bin/env python3
"""A look's detail, spike and flicker figures as issue 25 reads them: through the show. Each held-back
photograph (the portrait, the cameraman, the room with a motorbike) is made into a still clip, played by
`installation rehearse --lockstep --record` with the look's model folder in a copy of the default show (HUD
off, no controls), and the recording's content box (the 720x720 square the default show fits in its
1280x720 screen) is measured: the detail figure of its last frame (grey, 256x256, variance of the Laplacian),
its spike figure, and the flicker, the mean frame-to-frame change of the last 10 frames once the output
smoothing has settled. The recording is an mp4 (the show's recorder): its compression is in the figures, as
it was in the issue's.

    python scripts/look_through_show.py models/bloom --photos /work/look-runs/photos/sets/bloom
    python scripts/look_through_show.py /work/look-runs/bloom/passed/step-003004.pt --json

A checkpoint is exported first (`installation export`, its card's chain) into a temporary folder; so is a
model folder played as it is (its int8 twin where the show would play one on this CPU). scripts/look_detail.py
measures the same pictures without the renderer, the recorder and the camera path, and is quicker.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from installation.render.renderer import UPSCALES  # noqa: E402
from installation.training.quality import (  # noqa: E402
    PORTRAIT,
    detail_figure,
    held_back_photographs,
    photographs_detail,
    set_pictures,
    spike_figure,
    square,
)

SCREEN = (1280, 720)  # the default show's screen; its content box is the centred 720x720 square
FRAMES = 45  # the output smoothing settles within 20-30 frames
LAST = 10  # frames the flicker is read over


def still_clip(picture: np.ndarray, path: Path, frames: int = FRAMES) -> Path:
    """The photograph's centre square at 720x720 in the middle of a black 1280x720 frame, `frames` times: the
    show's centre crop of the camera then takes exactly that square."""
    w, h = SCREEN
    frame = np.zeros((h, w, 3), np.uint8)
    x0 = (w - h) // 2
    frame[:, x0:x0 + h] = cv2.cvtColor(square(picture, h), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    for _ in range(frames):
        writer.write(frame)
    writer.release()
    return path


def model_folder(look: Path, tmp: Path) -> Path:
    """`look` if it is a model folder; a checkpoint exported into `tmp` otherwise."""
    if look.is_dir():
        return look.resolve()
    out = tmp / "model"
    cmd = [sys.executable, "-m", "installation.training.cli", "export", str(look), "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode:
        raise SystemExit(f"look_through_show: export of {look} failed:\n{res.stderr.strip()}")
    return out


def show_file(model: Path, clip: Path, path: Path, upscale: str = "sharp") -> Path:
    """The default show with this model and clip, fitted in its 1280x720 screen, the HUD off, the model's
    picture enlarged as `upscale` says (display/upscale)."""
    path.write_text(f'name = "through-the-show"\n[source]\nkind = "video"\nvideo = "{clip}"\n'
                    f'width = {SCREEN[0]}\nheight = {SCREEN[1]}\nfps = 30\n[model]\npath = "{model}"\n[render]\n'
                    f'width = {SCREEN[0]}\nheight = {SCREEN[1]}\ncontent_size = {SCREEN[1]}\n'
                    f'[params]\n"hud/show" = false\n"display/upscale" = "{upscale}"\n')
    return path


def played(show: Path, out: Path, state: Path) -> list[np.ndarray]:
    """The recording of `show` (its clip played once through), frame by frame (RGB)."""
    cmd = [sys.executable, "-m", "installation.cli", "rehearse", str(show), "--headless", "--lockstep",
           "--frames", str(FRAMES), "--record", str(out), "--no-osc", "--fresh",
           "--state", str(state)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode:
        raise SystemExit(f"look_through_show: rehearse failed:\n{res.stderr.strip()[-2000:]}")
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if len(frames) < LAST + 1:
        raise SystemExit(f"look_through_show: the recording {out} has {len(frames)} frames")
    return frames


def content(frame: np.ndarray) -> np.ndarray:
    w, h = SCREEN
    x0 = (w - h) // 2
    return frame[:, x0:x0 + h]


def measure(look: Path, photos: Path | None, upscale: str = "sharp") -> tuple[dict[str, Any], list[np.ndarray]]:
    row: dict[str, Any] = {"look": str(look), "upscale": upscale}
    tiles = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        model = model_folder(look, tmp)
        for name, pic in held_back_photographs().items():
            show = show_file(model, still_clip(pic, tmp / f"{name}.mp4"), tmp / f"{name}.toml", upscale)
            frames = played(show, tmp / f"{name}-out.mp4", tmp / "state")
            boxes = [square(content(f)).astype(np.float32) for f in frames[-LAST - 1:]]
            flicker = float(np.mean([np.abs(b - a).mean() for a, b in itertools.pairwise(boxes)]))
            last = boxes[-1].astype(np.uint8)
            row[name] = {"detail": round(detail_figure(last), 1), "spike": round(spike_figure(last), 2),
                         "flicker": round(flicker, 3)}
            tiles.append(np.concatenate([square(pic), last], axis=1))
    names = list(held_back_photographs())
    row["spike"] = max(row[n]["spike"] for n in names)
    row["flicker"] = max(row[n]["flicker"] for n in names)
    if photos is not None:
        figures = photographs_detail(photos)
        row["photographs_median"] = round(statistics.median(figures), 1)
        row["share"] = round(row[PORTRAIT]["detail"] / row["photographs_median"], 3)
        tiles.append(median_photographs(photos, figures))
    return row, tiles


def median_photographs(photos: Path, figures: list[float]) -> np.ndarray:
    """The two photographs of the set whose detail figures lie nearest its median, as measured (short side
    256, centre square), side by side: what the look's picture is held against."""
    files = set_pictures(photos)
    median = statistics.median(figures)
    nearest = sorted(range(len(files)), key=lambda i: abs(figures[i] - median))[:2]
    crops = [square(cv2.cvtColor(cv2.imread(str(files[i])), cv2.COLOR_BGR2RGB)) for i in nearest]
    return np.concatenate(crops + [np.zeros_like(crops[0])] * (2 - len(crops)), axis=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("look", type=Path, help="a model folder, or a checkpoint (latest.pt) to export first")
    ap.add_argument("--photos", type=Path, default=None, help="the look's set folder (its training photographs)")
    ap.add_argument("--stills", type=Path, default=None,
                    help="write a PNG: each held-back photograph beside what was shown (with --photos, a last "
                         "row of two of the set's photographs, those nearest its median detail)")
    ap.add_argument("--upscale", choices=UPSCALES, default="sharp",
                    help="display/upscale: how the show enlarges the model's picture (default sharp, as it ships)")
    ap.add_argument("--json", action="store_true", help="one JSON line")
    args = ap.parse_args(argv)
    row, tiles = measure(args.look, args.photos, args.upscale)
    if args.stills:
        cv2.imwrite(str(args.stills), cv2.cvtColor(np.concatenate(tiles, axis=0), cv2.COLOR_RGB2BGR))
    if args.json:
        print(json.dumps(row))
    else:
        share = (f" ({100 * row['share']:.0f} % of its photographs' {row['photographs_median']})"
                 if "share" in row else "")
        print(f"{args.look}: through the show, detail on the portrait {row[PORTRAIT]['detail']}{share}; "
              + ", ".join(f"{n} {row[n]['detail']}" for n in held_back_photographs() if n != PORTRAIT)
              + f"; spike {row['spike']}; flicker {row['flicker']} grey levels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
