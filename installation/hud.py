"""The heads-up display's text, drawn on the CPU into a small RGBA picture a few times a second.

OpenCV's Hershey font needs no font files, so the HUD looks the same headless, in CI and on the wall.
"""

from __future__ import annotations

import cv2
import numpy as np

LINE_PX = 20
WIDTH_PX = 560


def overlay(lines: list[str], width: int = WIDTH_PX) -> np.ndarray:
    """Text lines on a translucent dark panel, HxWx4 uint8 (picture convention)."""
    h = LINE_PX * len(lines) + 10
    img = np.zeros((h, width, 4), np.uint8)
    img[:, :, 3] = 170
    for i, line in enumerate(lines):
        warn = line.startswith("!")
        colour = (255, 120, 90, 255) if warn else (235, 235, 235, 255)
        cv2.putText(img, line[:80], (8, 18 + i * LINE_PX), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return img
