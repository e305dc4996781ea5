"""Projection maths: where the content lands on the screen (fit / fill / stretch, rotation, mirror, corner
pin) as one 3x3 matrix, its inverse's box, and the matrix a frame's snapshot asks for."""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

log = logging.getLogger("installation.render")


def projection_matrix(screen: tuple[int, int], content: tuple[int, int], fit: str = "fit", rotate: int = 0,
                      mirror_x: bool = False, mirror_y: bool = False,
                      corners: tuple[tuple[float, float], ...] = ((0, 0),) * 4) -> np.ndarray:
    """The 3x3 matrix taking screen coordinates ([0,1]², top-left origin) to content coordinates.

    Forward, content -> screen: mirror, rotate clockwise, place in a centred rect (fit/fill/stretch),
    then the corner pin moves the screen's corners (tl, tr, br, bl) by the given offsets.
    """
    sw, sh = screen
    cw, ch = content
    if rotate in (90, 270):
        cw, ch = ch, cw
    ca, sa = cw / ch, sw / sh
    if fit == "stretch":
        fw = fh = 1.0
    elif (fit == "fit") == (ca > sa):
        fw, fh = 1.0, sa / ca
    else:
        fw, fh = ca / sa, 1.0
    x0, y0 = (1 - fw) / 2, (1 - fh) / 2
    src = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    dst = []
    for u, v in src:
        if mirror_x:
            u = 1 - u
        if mirror_y:
            v = 1 - v
        u, v = {0: (u, v), 90: (1 - v, u), 180: (1 - u, 1 - v), 270: (v, 1 - u)}[rotate]
        dst.append((x0 + u * fw, y0 + v * fh))
    unit = np.float32(src)
    pinned = unit + np.float32(corners)
    keystone = cv2.getPerspectiveTransform(unit, pinned)
    pts = cv2.perspectiveTransform(np.float32(dst)[None], keystone)[0]
    m = cv2.getPerspectiveTransform(pts.astype(np.float32), unit)  # screen -> content
    return m.astype(np.float32)


def content_box(screen_to_content: np.ndarray, screen: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The screen rectangle (x, y, w, h; GL's bottom-left origin) holding the content's picture, for a
    scissor: outside it the present pass would only paint black. None when the mapping is degenerate."""
    try:
        fwd = np.linalg.inv(screen_to_content.astype(np.float64))
    except np.linalg.LinAlgError:
        return None
    pts = fwd @ np.array([[0, 1, 1, 0], [0, 0, 1, 1], [1, 1, 1, 1]], np.float64)
    if (pts[2] <= 1e-9).any():
        return None
    sx, sy = pts[0] / pts[2], pts[1] / pts[2]  # screen [0, 1], top-left origin
    w, h = screen
    x0, x1 = int(np.floor(max(sx.min(), 0) * w)), int(np.ceil(min(sx.max(), 1) * w))
    y0, y1 = int(np.floor((1 - min(sy.max(), 1)) * h)), int(np.ceil((1 - max(sy.min(), 0)) * h))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def matrix_from_snapshot(snap: Any, screen: tuple[int, int], content: tuple[int, int]) -> np.ndarray:
    corners = tuple((snap[f"display/{c}_x"], snap[f"display/{c}_y"]) for c in ("tl", "tr", "br", "bl"))
    return projection_matrix(screen, content, snap["display/fit"], int(snap["display/rotate"]),
                             snap["display/mirror_x"], snap["display/mirror_y"], corners)
