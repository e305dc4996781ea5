#!/usr/bin/env python3
"""Fetch the selfie segmentation models into models/segmenters/.

MediaPipe 0.10.30 and newer ship no model files, but the 0.10.21 wheel on PyPI carries the two selfie
segmentation models. pip downloads that wheel (never installs it: it pins numpy<2 and protobuf<5) and
the two .tflite files are copied out of it. Does nothing when both files are already there.

    python scripts/fetch_segmenters.py [--force]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "models" / "segmenters"
WHEEL_VERSION = "0.10.21"
MEMBER_DIR = "mediapipe/modules/selfie_segmentation/"
MODELS = ("selfie_segmentation.tflite", "selfie_segmentation_landscape.tflite")

# The wheel is chosen by these tags, not by the running interpreter, so the script works under any
# Python and on any platform pip runs on (the .tflite files inside are the same in every wheel).
PIP_ARGS = (
    "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
    "--python-version", "3.11",
    "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
    "--platform", "manylinux2014_x86_64",
    f"mediapipe=={WHEEL_VERSION}",
)


class FetchError(RuntimeError):
    pass


def missing(dest: Path = DEST) -> list[str]:
    return [m for m in MODELS if not (dest / m).is_file() or (dest / m).stat().st_size == 0]


def download_wheel(tmp: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", *PIP_ARGS, "-d", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise FetchError(f"pip could not download mediapipe=={WHEEL_VERSION} (exit {proc.returncode});"
                         f" it needs access to PyPI (or a pip index configured with PIP_INDEX_URL):\n{tail}")
    wheels = sorted(tmp.glob("mediapipe-*.whl"))
    if not wheels:
        raise FetchError(f"pip reported success but left no mediapipe wheel in {tmp}")
    return wheels[0]


def extract(wheel: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for model in MODELS:
            member = MEMBER_DIR + model
            if member not in names:
                raise FetchError(f"{wheel.name} has no {member}")
            # Write to a temporary name, then rename: an interrupted run never leaves a truncated model
            # that the idempotency check would take for a good one.
            part = dest / (model + ".part")
            with z.open(member) as src, open(part, "wb") as out:
                shutil.copyfileobj(src, out)
            part.replace(dest / model)


def fetch(dest: Path = DEST, force: bool = False) -> list[Path]:
    """Make sure both models are in dest; returns their paths. Raises FetchError."""
    if force or missing(dest):
        with tempfile.TemporaryDirectory(prefix="fetch_segmenters_") as tmp:
            extract(download_wheel(Path(tmp)), dest)
    return [dest / m for m in MODELS]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--force", action="store_true", help="download again even when the files exist")
    ap.add_argument("--dest", type=Path, default=DEST, help=f"target folder (default {DEST})")
    args = ap.parse_args(argv)
    if not args.force and not missing(args.dest):
        print(f"fetch_segmenters: models already in {args.dest}")
        return 0
    try:
        paths = fetch(args.dest, force=args.force)
    except (FetchError, OSError, zipfile.BadZipFile) as e:
        print(f"fetch_segmenters: error: {e}", file=sys.stderr)
        return 1
    for p in paths:
        print(f"fetch_segmenters: {p} ({p.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
