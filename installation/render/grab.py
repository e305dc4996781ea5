"""/grab: the current camera frame, mask, model input and output as PNGs, to collect material for the
next dataset. Written in the show's state folder, never beside the installed show files."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from installation.render.renderer import Layers


def save_grab(folder: Path, index: int, layers: Layers) -> list[Path]:
    """Write what this frame was made of; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y%m%d-%H%M%S") + f"-f{index:07d}"
    pictures: dict[str, np.ndarray | None] = {
        "camera": layers.camera,
        "mask": None if layers.mask is None else (np.clip(layers.mask, 0, 1) * 255).astype(np.uint8),
        "input": layers.model_input,
        "output": layers.output,
    }
    written = []
    for name, pic in pictures.items():
        if pic is None:
            continue
        path = folder / f"{stem}-{name}.png"
        bgr = pic if pic.ndim == 2 else cv2.cvtColor(pic, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), bgr):
            raise OSError(f"can't write {path}")
        written.append(path)
    return written
