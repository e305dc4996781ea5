#!/usr/bin/env python3
"""Check the selfie segmentation models in models/segmenters/ (shipped with the package), or fetch them again.

The repository and the wheel carry both files (models/segmenters/NOTICE: origin, licence, hashes); nobody
needs to fetch them. By default this script only checks that they are there with the recorded sha256.
--download shows where they come from: pip downloads the mediapipe 0.10.21 wheel (MediaPipe 0.10.30 and
newer ship no model files; the wheel is never installed: it pins numpy<2 and protobuf<5) and the two
.tflite members are compared with the files here, byte for byte; --force writes them over the files here.

    python scripts/fetch_segmenters.py [--download] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
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
SHA256 = {  # as models/segmenters/NOTICE records them
    "selfie_segmentation.tflite": "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
    "selfie_segmentation_landscape.tflite": "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
}
MODELS = tuple(SHA256)

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


def differing(dest: Path = DEST) -> list[str]:
    """The models missing from dest or differing from the recorded hashes."""
    return [m for m in MODELS if not (dest / m).is_file()
            or hashlib.sha256((dest / m).read_bytes()).hexdigest() != SHA256[m]]


def fetch(dest: Path = DEST, force: bool = False) -> list[Path]:
    """Make sure both models are in dest, as recorded; returns their paths. Raises FetchError."""
    if force or differing(dest):
        with tempfile.TemporaryDirectory(prefix="fetch_segmenters_") as tmp:
            extract(download_wheel(Path(tmp)), dest)
    if bad := differing(dest):
        raise FetchError(f"{', '.join(bad)} in {dest} differ from the sha256 recorded in NOTICE")
    return [dest / m for m in MODELS]


def compare_with_wheel(dest: Path = DEST) -> list[str]:
    """The models in dest that are not byte for byte the 0.10.21 wheel's members. Raises FetchError."""
    with tempfile.TemporaryDirectory(prefix="fetch_segmenters_") as tmp:
        extract(download_wheel(Path(tmp)), Path(tmp) / "wheel")
        return [m for m in MODELS if not (dest / m).is_file()
                or (dest / m).read_bytes() != (Path(tmp) / "wheel" / m).read_bytes()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--download", action="store_true",
                    help=f"download mediapipe=={WHEEL_VERSION} and compare the files with its members")
    ap.add_argument("--force", action="store_true", help="write the wheel's members over the files here")
    ap.add_argument("--dest", type=Path, default=DEST, help=f"the folder (default {DEST})")
    args = ap.parse_args(argv)
    try:
        if args.force:
            fetch(args.dest, force=True)
        elif args.download and (bad := compare_with_wheel(args.dest)):
            print(f"fetch_segmenters: {', '.join(bad)} in {args.dest} are not the mediapipe {WHEEL_VERSION} "
                  "wheel's (--force writes the wheel's)", file=sys.stderr)
            return 1
    except (FetchError, OSError, zipfile.BadZipFile) as e:
        print(f"fetch_segmenters: error: {e}", file=sys.stderr)
        return 1
    if bad := differing(args.dest):
        print(f"fetch_segmenters: {', '.join(bad)} in {args.dest} missing or not as recorded (sha256 in NOTICE); "
              "--force fetches them from the mediapipe wheel", file=sys.stderr)
        return 1
    for m in MODELS:
        p = args.dest / m
        print(f"fetch_segmenters: {p} ({p.stat().st_size} bytes, sha256 as recorded"
              + (f", the mediapipe {WHEEL_VERSION} wheel's" if args.download or args.force else "") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
