"""`installation segment`: a person mask (PNG) for each frame of a video, an image or a folder of them, with
the same segmenters and mask treatment as the live show, at full resolution and without smoothing."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from installation.core.errors import UserError
from installation.core.progress import progress
from installation.vision.segment import (
    DEFAULT_MODELS_DIR,
    IMAGE_SUFFIXES,
    MODES,
    PARAMS,
    MaskTreatment,
    default_values,
    make_segmenter,
    segment_frame,
)

log = logging.getLogger("installation.segment")


def add_commands(sub: Any) -> None:
    p = sub.add_parser("segment", help="write a person mask (PNG) for each frame of a video, image or folder",
                       description="Write one PNG mask (white = person) per frame of a video, per image, or "
                                   "per image in a folder. Offline defaults: full resolution, no smoothing.")
    p.add_argument("input", metavar="INPUT",
                   help="a video file, an image file, or a folder of images (its subfolders too: the masks keep "
                        "the pictures' paths under it)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder the masks are written to")
    p.add_argument("--mode", choices=MODES[1:], default="selfie", help="segmenter (default: selfie)")
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="take every Nth frame (or image); masks keep the source frame's number")
    p.add_argument("--models", type=Path, default=DEFAULT_MODELS_DIR, metavar="DIR",
                   help="folder with the selfie .tflite models")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="overrides",
                   help="set a seg/ parameter, e.g. --set seg/threshold=0.6 (repeatable)")
    p.set_defaults(func=cmd_segment)


def _offline_values(args: argparse.Namespace) -> dict[str, Any]:
    # Offline there is time for full resolution, and images in a folder are unrelated: no smoothing.
    values = default_values(mode=args.mode, scale=1.0, smooth=0.0)
    by_name = {p.name: p for p in PARAMS}
    for item in getattr(args, "overrides", []) or []:
        name, sep, raw = item.partition("=")
        name = name.strip().lstrip("/")
        if not name.startswith("seg/"):
            name = "seg/" + name
        if not sep or name not in by_name or by_name[name].kind == "trigger":
            raise UserError(f"--set {item!r}: expected NAME=VALUE with a seg/ parameter",
                            expected=", ".join(n for n, p in by_name.items() if p.kind != "trigger"))
        try:
            values[name] = by_name[name].coerce(raw)
        except ValueError as e:
            raise UserError(str(e), key=name) from None
    return values


def _frames(src: Path, every: int) -> tuple[Iterator[tuple[str, np.ndarray]], int | None]:
    """(name, RGB picture) pairs from a video, an image or a folder, and how many (None if unknown)."""
    if not src.exists():
        raise UserError("no such file or folder", file=src)
    if src.is_dir():  # with its subfolders, in sorted order; a mask keeps the picture's path under src
        files = sorted((f for f in src.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
                       key=lambda f: f.relative_to(src).parts)
        if not files:
            raise UserError("no images in this folder or its subfolders", file=src, expected=" ".join(IMAGE_SUFFIXES))
        folders = len({f.parent for f in files})
        print(f"segment: {len(files)} picture{'s' * (len(files) != 1)} in {folders} folder{'s' * (folders != 1)}",
              flush=True)
        picked = files[::every]
        return (((f.relative_to(src).with_suffix("").as_posix(), _read_image(f)) for f in picked), len(picked))
    if src.suffix.lower() in IMAGE_SUFFIXES:
        return iter([(src.stem, _read_image(src))]), 1
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise UserError("cannot open as a video or an image", file=src)
    ok, first = cap.read()
    if not ok or first is None:
        cap.release()
        raise UserError("no frames could be read from this video", file=src)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    total = (count + every - 1) // every if count > 0 else None

    def gen() -> Iterator[tuple[str, np.ndarray]]:
        try:
            frame, i = first, 0
            while frame is not None:
                if i % every == 0:
                    yield f"frame_{i:06d}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                ok, frame = cap.read()
                frame = frame if ok else None
                i += 1
        finally:
            cap.release()

    return gen(), total


def _read_image(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UserError("cannot read this image", file=path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def cmd_segment(args: argparse.Namespace) -> int:
    every = int(getattr(args, "every", 1))
    if every < 1:
        raise UserError("--every must be 1 or more", key="--every")
    values = _offline_values(args)
    if values["seg/mode"] == "none":  # only reachable through --set seg/mode=none
        raise UserError("mode 'none' writes no masks", key="seg/mode",
                        expected="selfie, chroma or background")
    frames, total = _frames(Path(args.input), every)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    segmenter = make_segmenter(values["seg/mode"], getattr(args, "models", DEFAULT_MODELS_DIR), values)
    assert segmenter is not None  # mode 'none' was refused above
    treatment = MaskTreatment()
    written = 0
    try:
        for name, rgb in progress(frames, total=total, unit="frame", desc="segment"):
            mask = segment_frame(segmenter, treatment, rgb, values)
            path = out / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), (mask * 255.0 + 0.5).astype(np.uint8)):
                raise UserError("cannot write the mask", file=path)
            written += 1
    finally:
        segmenter.close()
    print(f"segment: wrote {written} masks to {out}")
    return 0
