#!/usr/bin/env python3
"""Reproduce models/default end to end, offline but for the Debian mirror, on a CPU.

models/default is the main look, "water": nine licensed photographs of water and sky from Debian's
wallpaper packages, learnt from themselves the Learning to See way (docs/looks.md). This runs

    python scripts/fetch_photos.py
    python scripts/train_looks.py train water      # resumes from runs/looks/water/latest.pt if there
    python scripts/train_looks.py export water     # -> models/default, with the full card

(The first default model, trained on six scikit-image photographs with transposed convolutions, painted
a grid; it is in the git history.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    for args in (["scripts/fetch_photos.py"], ["scripts/train_looks.py", "train", "water"],
                 ["scripts/train_looks.py", "export", "water"]):
        print("+ python " + " ".join(args), flush=True)
        subprocess.run([sys.executable, *args], check=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
