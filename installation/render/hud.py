"""The heads-up display's text, drawn on the CPU into a small RGBA picture a few times a second.

OpenCV's Hershey font needs no font files, so the HUD looks the same headless, in CI and on the wall.
"""

from __future__ import annotations

import cv2
import numpy as np

LINE_PX = 20
PAD_PX = 8  # backdrop around the text: enough to read light letters over a light picture
MAX_CHARS = 110  # a longer line (a compiler message, a path) is cut rather than widening the panel off screen
FONT, SCALE, THICKNESS = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1


def overlay(lines: list[str]) -> np.ndarray:
    """Text lines on a translucent dark panel as wide as the longest line, HxWx4 uint8 (picture
    convention). The panel covers only the text: the picture around it is the show."""
    shown = [line[:MAX_CHARS] for line in lines]
    widths = [cv2.getTextSize(line, FONT, SCALE, THICKNESS)[0][0] for line in shown]
    w = max(widths, default=0) + 2 * PAD_PX
    h = LINE_PX * len(shown) + 10
    img = np.zeros((h, w, 4), np.uint8)
    img[:, :, 3] = 170
    for i, line in enumerate(shown):
        warn = line.startswith("!")
        colour = (255, 120, 90, 255) if warn else (235, 235, 235, 255)
        cv2.putText(img, line, (PAD_PX, 18 + i * LINE_PX), FONT, SCALE, colour, THICKNESS, cv2.LINE_AA)
    return img
