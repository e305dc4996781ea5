"""docs/workshop-framing.png: what the camera sees against what the model sees, made by the show's own
code: a frame of the sample clip, the box of the chain's centre crop drawn on it (crop_box), the model's
square as the chain makes it (flip, crop, resize: Chain.apply), and the two ways the square meets a
16:9 projector (display/fit "fit" with bars at the sides, or a model built with --crop fit, letterboxed,
filling the screen). Run: python scripts/make_workshop_framing.py [OUT.png]"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from installation.media.sample import ensure_sample_clip
from installation.vision.preprocess import Chain, crop_box

ROW_H = 300  # every panel is this tall
FONT = cv2.FONT_HERSHEY_SIMPLEX


def frame_of(clip: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(clip))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"can't read frame {index} of {clip}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def fit_height(img: np.ndarray, h: int = ROW_H) -> np.ndarray:
    return cv2.resize(img, (round(img.shape[1] * h / img.shape[0]), h), interpolation=cv2.INTER_AREA)


def on_screen(square: np.ndarray, w: int = 1280, h: int = 720) -> np.ndarray:
    """The square on a 16:9 screen, whole (display/fit "fit"): bars at the sides."""
    screen = np.zeros((h, w, 3), np.uint8)
    side = cv2.resize(square, (h, h), interpolation=cv2.INTER_LINEAR)
    screen[:, (w - h) // 2:(w - h) // 2 + h] = side
    return screen


def filled(square: np.ndarray, w: int = 1280, h: int = 720) -> np.ndarray:
    """The square on a 16:9 screen, filling it (display/fit "fill"): its top and bottom cut off."""
    big = cv2.resize(square, (w, w), interpolation=cv2.INTER_LINEAR)
    return big[(w - h) // 2:(w - h) // 2 + h]


def label(img: np.ndarray, lines: list[str]) -> np.ndarray:
    out = np.full((img.shape[0] + 22 * len(lines) + 10, img.shape[1], 3), 255, np.uint8)
    out[:img.shape[0]] = img
    for i, text in enumerate(lines):
        cv2.putText(out, text, (6, img.shape[0] + 20 + 22 * i), FONT, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    return out


def row(panels: list[np.ndarray], gap: int = 12) -> np.ndarray:
    h = max(p.shape[0] for p in panels)
    padded = [np.pad(p, ((0, h - p.shape[0]), (0, gap), (0, 0)), constant_values=255) for p in panels]
    return np.concatenate(padded, axis=1)


def main(out: Path) -> None:
    rgb = frame_of(ensure_sample_clip(), 150)
    h, w = rgb.shape[:2]
    camera = rgb.copy()
    y0, x0, y1, x1 = crop_box(h, w, 256, 256)
    cv2.rectangle(camera, (x0, y0), (x1 - 1, y1 - 1), (255, 40, 40), 6)
    centre, _ = Chain.from_spec("plain", 256).apply(rgb)  # flip, centre crop, resize: the model's square
    letterbox, _ = Chain.from_spec([{"step": "flip"}, {"step": "crop", "crop": "fit"}, {"step": "resize"}],
                                   256).apply(rgb)
    top = row([label(fit_height(camera), [f"1. the camera: {w}x{h}; the red box is the",
                                          "central square the show uses"]),
               label(fit_height(centre), ["2. the model's input: that square,", "mirrored, at 256x256"]),
               label(fit_height(on_screen(centre)), ["3. on a 16:9 projector (display/fit fit):",
                                                     "the square whole, black bars at the sides"])])
    bottom = row([label(fit_height(letterbox), ["4. built with --crop fit: all of the camera,",
                                                "letterboxed into the 256x256 square"]),
                  label(fit_height(filled(letterbox)), ["5. ... shown with display/fit fill: the whole",
                                                        "16:9 picture, no bars (show new sets it)"])])
    width = max(top.shape[1], bottom.shape[1])
    sheet = np.concatenate([np.pad(p, ((0, 12), (0, width - p.shape[1]), (0, 0)), constant_values=255)
                            for p in (top, bottom)])
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    default = Path(__file__).resolve().parent.parent / "docs" / "workshop-framing.png"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
