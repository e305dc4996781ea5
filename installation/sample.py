"""The sample clip for rehearsals without a camera: scikit-image's astronaut portrait (a NASA photograph,
public domain, shipped inside the package) moved and zoomed over a room-like backdrop."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from .config import REPO_ROOT

SAMPLE_CLIP = REPO_ROOT / "media" / "sample_1280x720.mp4"


def make_sample_clip(path: Path = SAMPLE_CLIP, size: tuple[int, int] = (1280, 720), seconds: float = 8.0,
                     fps: float = 30.0) -> Path:
    """Write the clip: the portrait drifts across the frame, breathing in scale, like a visitor walking."""
    from skimage import data

    w, h = size
    portrait = data.astronaut()  # 512x512 RGB
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    room = np.stack([70 + 40 * yy / h, 66 + 30 * yy / h, 60 + 20 * xx / w], axis=2)
    room[int(h * 0.78):] *= 0.7  # a floor
    # soft edge so the photograph sits in the room rather than as a hard square
    r = np.hypot(*np.mgrid[-1:1:512j, -1:1:512j])
    alpha = np.clip((1.25 - r) / 0.35, 0, 1)[:, :, None]
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise OSError(f"can't write {path}")
    n = round(seconds * fps)
    for i in range(n):
        t = i / n
        scale = 1.0 + 0.35 * math.sin(2 * math.pi * t)
        side = int(h * 0.8 * scale)
        cx = w * (0.5 + 0.28 * math.sin(2 * math.pi * t))
        cy = h * (0.52 + 0.04 * math.sin(4 * math.pi * t))
        m = np.float32([[side / 512, 0, cx - side / 2], [0, side / 512, cy - side / 2]])
        fg = cv2.warpAffine(portrait, m, size, flags=cv2.INTER_LINEAR)
        a = cv2.warpAffine(alpha, m, size, flags=cv2.INTER_LINEAR)[:, :, None]
        frame = (room * (1 - a) + fg * a).clip(0, 255).astype(np.uint8)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def ensure_sample_clip() -> Path:
    if not SAMPLE_CLIP.is_file():
        make_sample_clip()
    return SAMPLE_CLIP
