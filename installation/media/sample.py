"""The sample clip for rehearsals without a camera, in the workshop's setting: a person in front of a
plain backdrop. The person is scikit-image's astronaut portrait (a NASA photograph, public domain,
shipped inside the package), cut out by the project's own selfie segmenter, then moved, leant,
turned and scaled over a flat backdrop with a little sensor noise. Every motion completes a whole
number of cycles, so the last frame flows into the first and a looping rehearsal has no jump."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from installation.core.errors import UserError
from installation.core.paths import REPO_ROOT, cache_dir, in_checkout

# A new name for the new clip: machines that made the old panned photograph keep it, but never reuse it.
# In a checkout it is made in media/; installed from a wheel, in the user's cache folder.
SAMPLE_CLIP = (REPO_ROOT / "media" if in_checkout() else cache_dir()) / "sample_person_1280x720.mp4"
SECONDS = 20.0
FPS = 30.0
BACKDROP_RGB = (84, 96, 110)  # blue-grey, like studio backdrop paper: the orange suit stands off it
NOISE_SIGMA = 3.0  # grey levels before encoding: about 1.8 survive mp4v, as a webcam in a lit room shows
NOISE_GRAIN = 0.8  # px: grain a little coarser than one pixel (finer noise mp4v removes altogether)
# The photograph is cut off at the chest, and its sides cut the arm and the helmet from row ~393 down:
# that row is anchored under the frame's bottom edge, with room for the lean, so no straight edge shows.
_ANCHOR_ROW = 390
_ANCHOR_DEPTH = 40  # photograph pixels below the bottom edge: a 6 degree lean lifts a corner by 27


def cut_out_person(models_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(the portrait RGB uint8, its alpha float32 0..1) from the selfie segmenter.

    Raises UserError when the segmenter's model files are missing."""
    from skimage import data

    from installation.vision.segment import DEFAULT_MODELS_DIR, SelfieSegmenter

    photo = data.astronaut()  # 512x512 RGB
    try:
        seg = SelfieSegmenter(models_dir or DEFAULT_MODELS_DIR, model="square")
    except UserError as e:
        raise UserError(f"the sample clip's person is cut out by the selfie segmenter: {e.message}",
                        file=e.file) from None
    try:
        confidence = seg.segment(photo)
    finally:
        seg.close()
    person = _largest_region((confidence > 0.5).astype(np.uint8))
    if person is None:
        raise UserError("the selfie segmenter found nobody in the astronaut photograph",
                        expected="a working selfie segmentation model (installation/models/segmenters)")
    person = _refine(photo, person)
    # GrabCut's edge follows the colours; pulling it in by a pixel keeps the photograph's own backdrop
    # out of the soft edge a lens would give it.
    person = cv2.erode(person, np.ones((3, 3), np.uint8))
    alpha = cv2.GaussianBlur(person.astype(np.float32), (0, 0), 1.0)
    return photo, alpha


def _largest_region(mask: np.ndarray) -> np.ndarray | None:
    """The largest 8-connected region of a 0/1 mask: specks on the shuttle model are not the person."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n < 2:
        return None
    return (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)


def _refine(photo: np.ndarray, person: np.ndarray, band: int = 12) -> np.ndarray:
    """The selfie model's mask is drawn at 256x256 and blurs between a shoulder and the pale backdrop
    next to it (a sliver of studio wall came along); GrabCut, given the mask's inside and outside as
    certain and only a band along its edge to decide, cuts along the colours there instead."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    gc = np.where(person > 0, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    gc[cv2.erode(person, disc) > 0] = cv2.GC_FGD
    gc[cv2.dilate(person, disc) == 0] = cv2.GC_BGD
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), gc, None, *models, 5, cv2.GC_INIT_WITH_MASK)
    refined = _largest_region(((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8))
    return person if refined is None else refined


def pose(t: float, size: tuple[int, int]) -> np.ndarray:
    """The 2x3 affine that places the portrait at phase t in [0, 1) of the loop."""
    w, h = size
    tau = 2 * math.pi * t
    scale = 1.0 + 0.12 * math.sin(2 * tau + 0.5)  # steps towards the camera and back, twice
    turn = 1.0 - 0.16 * (0.5 - 0.5 * math.cos(2 * tau))  # narrower when half turned away
    lean = math.radians(6.0 * math.sin(3 * tau + 0.7))
    k = 1.1 * h / 512 * scale  # the person's visible height is about 3/4 of the frame's at scale 1
    cx = w * (0.5 + 0.2 * math.sin(tau) + 0.04 * math.sin(3 * tau + 1.0))  # walks left and right
    cy = h + _ANCHOR_DEPTH * k + 0.01 * h * math.sin(8 * tau)  # a light bob of the steps
    c, s = math.cos(lean), math.sin(lean)
    a = np.array([[c * k * turn, -s * k], [s * k * turn, c * k]])
    offset = np.array([cx, cy]) - a @ np.array([256.0, _ANCHOR_ROW])
    return np.hstack([a, offset[:, None]]).astype(np.float32)


def make_sample_clip(path: Path = SAMPLE_CLIP, size: tuple[int, int] = (1280, 720), seconds: float = SECONDS,
                     fps: float = FPS, models_dir: Path | None = None, seed: int = 0) -> Path:
    """Write the clip (mp4v). Raises UserError when the selfie segmenter is missing."""
    photo, alpha = cut_out_person(models_dir)
    w, h = size
    fg = (photo * alpha[:, :, None] + 0.5).astype(np.uint8)  # premultiplied: warped and added in one go
    alpha8 = np.repeat((alpha * 255 + 0.5).astype(np.uint8)[:, :, None], 3, axis=2)
    backdrop = np.empty((h, w, 3), np.uint8)
    backdrop[:] = BACKDROP_RGB
    # A bank of noise fields, each split into two saturating uint8 halves: cv2.add/subtract is ~10x
    # cheaper than float noise made per frame, and a cycle of 16 fields doesn't show in a moving picture.
    rng = np.random.default_rng(seed)
    noise = []
    for _ in range(16):
        z = cv2.GaussianBlur(rng.standard_normal((h, w, 3), np.float32), (0, 0), NOISE_GRAIN)
        z = np.rint(z * (NOISE_SIGMA / z.std()))
        noise.append((np.clip(z, 0, 255).astype(np.uint8), np.clip(-z, 0, 255).astype(np.uint8)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part" + path.suffix)  # a clip cut short never passes for a whole one
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise UserError("can't write the sample clip", file=path)
    try:
        n = round(seconds * fps)
        for i in range(n):
            m = pose(i / n, size)
            person = cv2.warpAffine(fg, m, size, flags=cv2.INTER_LINEAR)
            cover = cv2.warpAffine(alpha8, m, size, flags=cv2.INTER_LINEAR)
            frame = cv2.add(person, cv2.multiply(backdrop, cv2.bitwise_not(cover), scale=1 / 255))
            up, down = noise[i % len(noise)]
            frame = cv2.subtract(cv2.add(frame, up), down)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    tmp.replace(path)
    return path


def ensure_sample_clip() -> Path:
    if not SAMPLE_CLIP.is_file():
        make_sample_clip()
    return SAMPLE_CLIP
