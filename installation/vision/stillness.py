"""Skipping inference while the room is still.

When nobody moves, consecutive model inputs barely differ and the model would paint the same picture
again. A 32x32 grey thumbnail of the model's input is compared with the one of the last frame that
was really inferred; below the threshold the show reuses the last output (counted as
`frames_still`, and as `frames_reused` once presented) and the CPU or GPU rests. Comparing with the
last *inferred* frame, not the previous one, means slow drift still adds up to a fresh inference.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB = 32


def thumbnail(img: np.ndarray, side: int = THUMB) -> np.ndarray:
    """HxWx3 (or HxW) uint8 -> side x side float32 grey, area-averaged (sensor noise averages out): cheap to
    compare. The still-room gate and the dataset builder's near-duplicate check both use it."""
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    return cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)


class StillnessGate:
    """`still(picture, threshold)` is True when the picture differs from the last one let through by
    less than `threshold` grey levels (mean absolute difference of thumbnails, 0..255)."""

    def __init__(self) -> None:
        self._last: np.ndarray | None = None
        self._key: object = None
        self.last_difference = float("nan")

    def still(self, picture: np.ndarray, threshold: float, key: object = None) -> bool:
        """key: what makes the output (the model): a new key always infers (a swap in a still room)."""
        if threshold <= 0 or not isinstance(picture, np.ndarray) or key is not self._key:
            self._last, self._key = None, key
        if threshold <= 0 or not isinstance(picture, np.ndarray):
            return False
        t = thumbnail(picture)
        if self._last is None or self._last.shape != t.shape:
            self._last = t
            return False
        self.last_difference = float(np.abs(t - self._last).mean())
        if self.last_difference < threshold:
            return True
        self._last = t
        return False

    def reset(self) -> None:
        """Forget the reference: the next picture is inferred (a model swap, a new chain)."""
        self._last = None
