#!/usr/bin/env python3
"""Makes the sample clip (media/sample_person_1280x720.mp4) for `installation rehearse` on machines
without a camera: the astronaut, cut out by the selfie segmenter, moving in front of a plain backdrop.
The selfie models ship in models/segmenters (scripts/fetch_segmenters.py checks them)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from installation.core.errors import UserError
from installation.media.sample import FPS, SAMPLE_CLIP, SECONDS, make_sample_clip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=SAMPLE_CLIP, help=f"where to write it (default {SAMPLE_CLIP})")
    p.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT (default 1280x720)")
    p.add_argument("--seconds", type=float, default=SECONDS, help=f"length of one loop (default {SECONDS:g})")
    p.add_argument("--fps", type=float, default=FPS, help=f"frame rate (default {FPS:g})")
    p.add_argument("--models", type=Path, default=None, help="folder of the selfie .tflite models")
    p.add_argument("--force", action="store_true", help="make it again even if it is there")
    args = p.parse_args(argv)
    if args.out.is_file() and not args.force:
        print(f"sample clip: {args.out} (already there)")
        return 0
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 1280x720")
    t = time.monotonic()
    try:
        path = make_sample_clip(args.out, (w, h), args.seconds, args.fps, models_dir=args.models)
    except UserError as e:
        print(f"sample clip: error: {e}", file=sys.stderr)
        return 1
    print(f"sample clip: {path} ({w}x{h}, {args.seconds:g} s at {args.fps:g} fps, made in "
          f"{time.monotonic() - t:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
