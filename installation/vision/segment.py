"""Person segmentation: three segmenters (selfie model, chroma key, empty-room plate), the mask treatment
that shapes their output, and `segment_frame`, which runs one on a frame. The worker thread that keeps
segmentation off the live loop's clock is `vision/segment_worker.py`.

Every segmenter takes HxWx3 uint8 RGB and returns an HxW float32 mask in [0, 1], 1 = person. Live
values come from the frame's Snapshot through `configure(values)`, so `segment(rgb)` stays one call.

MediaPipe is imported inside SelfieSegmenter only: `import installation.segment` must stay fast and
work where the model files are absent (chroma and background keying need neither).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from installation.core.chatter import quiet_native_stderr
from installation.core.errors import UserError
from installation.core.params import Param
from installation.core.paths import data_dir

log = logging.getLogger("installation.segment")

# INSTALLATION_SEGMENTERS_DIR points every user of the selfie models (the show, `segment`, the dataset
# builder) at another folder: a machine where they live elsewhere, or a test of their absence
DEFAULT_MODELS_DIR = Path(os.environ.get("INSTALLATION_SEGMENTERS_DIR")
                          or data_dir("models") / "segmenters")
SELFIE_MODELS = {
    "square": "selfie_segmentation.tflite",  # 256x256 input
    "landscape": "selfie_segmentation_landscape.tflite",  # 144x256 input
}
MODES = ("none", "selfie", "chroma", "background")
# The package ships both files (models/segmenters, package data in the wheel): missing, the installation is
# damaged or INSTALLATION_SEGMENTERS_DIR names the wrong folder
MISSING_MODEL = ("selfie segmentation model not found; the package ships selfie_segmentation.tflite and "
                 "selfie_segmentation_landscape.tflite in installation/models/segmenters: reinstall it, or set "
                 "INSTALLATION_SEGMENTERS_DIR to a folder that holds them")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# "Chroma key green" (#00B140), the colour sold as green-screen paint and cloth. Pure sRGB green
# (0, 1, 0) is far more saturated than any real backdrop, so keying on it would need a huge tolerance.
_KEY_GREEN = (0.0, 177 / 255, 64 / 255)


def _p(name: str, kind: str, default: Any, lo: float | None = None, hi: float | None = None,
       desc: str = "", unit: str = "", choices: tuple[str, ...] = (), persist: bool = True) -> Param:
    return Param(name, kind, default, lo, hi, choices, unit, desc, persist=persist)  # type: ignore[arg-type]


P_MODE = _p("seg/mode", "choice", "none", choices=MODES,
            desc="who finds the person: nobody, the selfie model, a chroma key, or the empty-room plate")
P_MODEL = _p("seg/model", "choice", "auto", choices=("auto", "square", "landscape"),
             desc="selfie model: 256x256 square, 144x256 landscape, or auto by the frame's aspect")
P_THRESHOLD = _p("seg/threshold", "float", 0.5, 0, 1,
                 "confidence from which a pixel is person (0: keep the soft mask)")
P_GROW = _p("seg/grow", "int", 0, -50, 50, "grow the mask outward (negative: shrink it)", "px")
P_FEATHER = _p("seg/feather", "float", 2.0, 0, 50, "blur of the mask edge (Gaussian sigma)", "px")
P_SMOOTH = _p("seg/smooth", "float", 0.3, 0, 0.99,
              "temporal smoothing of the mask (0: none, 0.9: slow and ghostly)")
P_SCALE = _p("seg/scale", "float", 0.5, 0.1, 1, "segment at this fraction of the frame's resolution", "x")
P_EVERY = _p("seg/every", "int", 1, 1, 30, "segment every Nth frame; the others reuse the last mask",
             "frames")
P_KEY_R = _p("seg/key_r", "float", _KEY_GREEN[0], 0, 1, "chroma key colour, red")
P_KEY_G = _p("seg/key_g", "float", _KEY_GREEN[1], 0, 1, "chroma key colour, green")
P_KEY_B = _p("seg/key_b", "float", _KEY_GREEN[2], 0, 1, "chroma key colour, blue")
P_TOLERANCE = _p("seg/tolerance", "float", 30.0, 0, 150,
                 "chroma key: colour distance from the key still counted as backdrop", "dE")
P_SOFTNESS = _p("seg/softness", "float", 15.0, 0, 100,
                "chroma and background: distance over which backdrop fades into person", "dE")
P_KEY_LIGHTNESS = _p("seg/key_lightness", "float", 0.25, 0, 1,
                     "chroma key: weight of lightness against colour (low: ignores shading on the backdrop)")
P_BG_TOLERANCE = _p("seg/bg_tolerance", "float", 12.0, 0, 150,
                    "background: distance from the empty-room plate still counted as room", "dE")
# Higher than the key's: a person differs from a wall in lightness as often as in colour.
P_BG_LIGHTNESS = _p("seg/bg_lightness", "float", 0.6, 0, 1,
                    "background: weight of lightness against colour (low: ignores shadows and grey on grey)")
P_BG_FRAMES = _p("seg/bg_frames", "int", 30, 1, 600, "background: frames averaged into the empty-room plate",
                 "frames")
# A trigger is not in the Snapshot: the show drains it and calls SegmentWorker.relearn().
P_RELEARN = _p("seg/relearn", "trigger", None, persist=False,
               desc="background: learn the empty room again from the next frames")

PARAMS: list[Param] = [P_MODE, P_MODEL, P_THRESHOLD, P_GROW, P_FEATHER, P_SMOOTH, P_SCALE, P_EVERY,
                       P_KEY_R, P_KEY_G, P_KEY_B, P_TOLERANCE, P_SOFTNESS, P_KEY_LIGHTNESS,
                       P_BG_TOLERANCE, P_BG_LIGHTNESS, P_BG_FRAMES, P_RELEARN]


def param_value(values: Mapping[str, Any], p: Param) -> Any:
    """A parameter's value from a snapshot (or any partial mapping), coerced; the default when absent."""
    return p.coerce(values[p.name]) if p.name in values else p.default


def default_values(changes: Mapping[str, Any] | None = None, /, **overrides: Any) -> dict[str, Any]:
    """Every seg/ value at its default, then changes ({'seg/mode': 'chroma'}), then overrides (mode=...)."""
    values = {p.name: p.default for p in PARAMS if p.kind != "trigger"}
    for key, value in {**(changes or {}), **overrides}.items():
        name = key if key.startswith("seg/") else "seg/" + key
        if name not in values:
            raise KeyError(f"no parameter {name}")
        values[name] = value
    return values


class SegmenterMissingError(UserError):
    """A segmentation model file that isn't there: the package ships it, so the installation is damaged or
    INSTALLATION_SEGMENTERS_DIR names the wrong folder."""


class Segmenter(Protocol):
    def configure(self, values: Mapping[str, Any]) -> None: ...
    def segment(self, rgb: np.ndarray) -> np.ndarray: ...
    def close(self) -> None: ...


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ValueError(f"expected an HxWx3 uint8 RGB picture, got shape {shape} {dtype}")


def _smoothstep(x: np.ndarray, lo: float, width: float) -> np.ndarray:
    """0 below lo, 1 above lo + width, a smooth S between (a hard step when width is 0)."""
    if width <= 0:
        return (x > lo).astype(np.float32)
    t = np.clip((x - lo) * (1.0 / width), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32, copy=False)


def _lab(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> float32 CIELab (L 0..100, a and b about -128..127)."""
    return cv2.cvtColor(rgb.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab)


def _lab_distance(lab: np.ndarray, ref: np.ndarray, lightness_weight: float) -> np.ndarray:
    """Per-pixel Lab distance with lightness down-weighted: shading and soft shadows change mostly L."""
    d = lab - ref
    d[..., 0] *= lightness_weight
    dist = np.sqrt(np.einsum("hwc,hwc->hw", d, d))
    # A 5x5 median removes camera-noise speckle without rounding the silhouette's corners as a blur would.
    return cv2.medianBlur(dist.astype(np.float32), 5)


# ---- segmenters ---------------------------------------------------------------------------------

def mp_image(rgb: np.ndarray) -> Any:
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))


class SelfieSegmenter:
    """MediaPipe's selfie segmentation model through the Tasks ImageSegmenter.

    Running mode IMAGE, not VIDEO: VIDEO adds no temporal smoothing for this model, only a demand for
    strictly increasing timestamps, which a worker that skips frames, rebuilds on mode switches and a
    rehearsal video that loops would all have to fake. Smoothing is MaskTreatment's job.
    """

    def __init__(self, models_dir: str | Path = DEFAULT_MODELS_DIR, model: str = "auto") -> None:
        self.models_dir = Path(models_dir)
        self.model = P_MODEL.coerce(model)
        self._tasks: dict[str, Any] = {}
        for variant in self._variants(self.model):
            self._path(variant)  # fail now, not on the first frame

    @staticmethod
    def _variants(model: str) -> tuple[str, ...]:
        return tuple(SELFIE_MODELS) if model == "auto" else (model,)

    def _path(self, variant: str) -> Path:
        path = self.models_dir / SELFIE_MODELS[variant]
        if not path.is_file():
            raise SegmenterMissingError(MISSING_MODEL, file=path)
        return path

    def _task(self, variant: str) -> Any:
        task = self._tasks.get(variant)
        if task is None:
            from mediapipe.tasks.python import vision
            from mediapipe.tasks.python.core.base_options import BaseOptions

            options = vision.ImageSegmenterOptions(
                base_options=BaseOptions(model_asset_path=str(self._path(variant))),
                running_mode=vision.RunningMode.IMAGE,
                output_confidence_masks=True,
                output_category_mask=False,
            )
            with quiet_native_stderr():  # TFLite's and absl's notices on loading and first use
                task = vision.ImageSegmenter.create_from_options(options)
                task.segment(mp_image(np.zeros((16, 16, 3), np.uint8)))
            self._tasks[variant] = task
        return task

    def configure(self, values: Mapping[str, Any]) -> None:
        model = param_value(values, P_MODEL)
        if model != self.model:
            for variant in self._variants(model):
                self._path(variant)
            self.model = model

    def variant_for(self, width: int, height: int) -> str:
        if self.model != "auto":
            return self.model
        # The models stretch their input: pick the one whose aspect (1:1 or 16:9) distorts the frame less.
        return "landscape" if width / height > 1.33 else "square"

    def segment(self, rgb: np.ndarray) -> np.ndarray:
        _check_rgb(rgb)
        h, w = rgb.shape[:2]
        task = self._task(self.variant_for(w, h))
        result = task.segment(mp_image(rgb))
        masks = result.confidence_masks
        if not masks:
            raise RuntimeError("the selfie model returned no confidence mask")
        # numpy_view() borrows MediaPipe's buffer, which the next call reuses: copy it out.
        m = np.array(masks[0].numpy_view(), dtype=np.float32, copy=True).reshape(h, w)
        return np.clip(m, 0.0, 1.0, out=m)

    def close(self) -> None:
        for task in self._tasks.values():
            task.close()
        self._tasks.clear()

    def __enter__(self) -> SelfieSegmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChromaSegmenter:
    """Keys a coloured backdrop: a pixel far (in CIELab) from the key colour is person.

    Lightness is weighted down against a* and b*, so the shading across a lit backdrop and the
    person's soft shadow on it stay backdrop; the distance is median-filtered against camera noise.
    """

    def __init__(self, key_rgb: tuple[float, float, float] = _KEY_GREEN,
                 tolerance: float = P_TOLERANCE.default, softness: float = P_SOFTNESS.default,
                 lightness_weight: float = P_KEY_LIGHTNESS.default) -> None:
        self.key_rgb = key_rgb
        self.tolerance = tolerance
        self.softness = softness
        self.lightness_weight = lightness_weight

    def configure(self, values: Mapping[str, Any]) -> None:
        self.key_rgb = (param_value(values, P_KEY_R), param_value(values, P_KEY_G), param_value(values, P_KEY_B))
        self.tolerance = param_value(values, P_TOLERANCE)
        self.softness = param_value(values, P_SOFTNESS)
        self.lightness_weight = param_value(values, P_KEY_LIGHTNESS)

    @property
    def key_lab(self) -> np.ndarray:
        px = np.array([[self.key_rgb]], np.float32)
        return cv2.cvtColor(px, cv2.COLOR_RGB2Lab)[0, 0]

    def segment(self, rgb: np.ndarray) -> np.ndarray:
        _check_rgb(rgb)
        dist = _lab_distance(_lab(rgb), self.key_lab, self.lightness_weight)
        return _smoothstep(dist, self.tolerance, self.softness)

    def close(self) -> None:
        pass


class BackgroundSegmenter:
    """Subtracts a plate of the empty room: the average of the first `frames` frames it sees.

    Until the plate is learned the mask is empty (nobody is supposed to be in the room then). The plate
    is learned again on relearn() and whenever the frame size changes.
    """

    def __init__(self, frames: int = P_BG_FRAMES.default, tolerance: float = P_BG_TOLERANCE.default,
                 softness: float = P_SOFTNESS.default,
                 lightness_weight: float = P_BG_LIGHTNESS.default) -> None:
        self.frames = frames
        self.tolerance = tolerance
        self.softness = softness
        self.lightness_weight = lightness_weight
        self._sum: np.ndarray | None = None
        self._count = 0
        self._plate: np.ndarray | None = None  # Lab

    def configure(self, values: Mapping[str, Any]) -> None:
        self.frames = param_value(values, P_BG_FRAMES)
        self.tolerance = param_value(values, P_BG_TOLERANCE)
        self.softness = param_value(values, P_SOFTNESS)
        self.lightness_weight = param_value(values, P_BG_LIGHTNESS)

    @property
    def learned(self) -> bool:
        return self._plate is not None

    @property
    def plate(self) -> np.ndarray | None:
        """The learned empty room as RGB uint8, for a HUD or a check."""
        if self._plate is None:
            return None
        rgb = cv2.cvtColor(self._plate, cv2.COLOR_Lab2RGB)
        return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def relearn(self) -> None:
        self._sum, self._count, self._plate = None, 0, None

    @staticmethod
    def _prepare(rgb: np.ndarray) -> np.ndarray:
        # The plate is an average, nearly noise-free; a light blur brings the live frame closer to it.
        return _lab(cv2.GaussianBlur(rgb, (0, 0), 1.0))

    def segment(self, rgb: np.ndarray) -> np.ndarray:
        _check_rgb(rgb)
        lab = self._prepare(rgb)
        if self._plate is not None and self._plate.shape != lab.shape:
            self.relearn()
        if self._plate is None:
            if self._sum is None or self._sum.shape != lab.shape:
                self._sum, self._count = np.zeros_like(lab), 0
            self._sum += lab
            self._count += 1
            if self._count >= self.frames:
                self._plate = self._sum / self._count
                self._sum = None
            return np.zeros(rgb.shape[:2], np.float32)
        dist = _lab_distance(lab, self._plate, self.lightness_weight)
        return _smoothstep(dist, self.tolerance, self.softness)

    def close(self) -> None:
        self.relearn()


def make_segmenter(mode: str, models_dir: str | Path = DEFAULT_MODELS_DIR,
                   values: Mapping[str, Any] | None = None) -> Segmenter | None:
    """A segmenter for a seg/mode value (None for 'none'), configured from values when given."""
    mode = P_MODE.coerce(mode)
    seg: Segmenter | None
    if mode == "none":
        return None
    if mode == "selfie":
        seg = SelfieSegmenter(models_dir, param_value(values or {}, P_MODEL))
    elif mode == "chroma":
        seg = ChromaSegmenter()
    elif mode == "background":
        seg = BackgroundSegmenter()
    else:  # P_MODE.coerce admits only MODES; this guards a mode added there and forgotten here
        raise ValueError(f"no segmenter for mode {mode!r}")
    if values is not None:
        seg.configure(values)
    return seg


# ---- mask treatment -----------------------------------------------------------------------------

class MaskTreatment:
    """Shapes a raw mask: temporal smoothing, threshold, grow or shrink, feather. Keeps its own memory.

    Smoothing comes first, on the confidence: a thresholded mask that is smoothed afterwards leaves
    ghost trails, while smoothing before the threshold removes edge flicker and keeps the cut crisp.
    Sizes are in pixels of the full frame; px_scale converts them when the mask is smaller.
    """

    def __init__(self) -> None:
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        self._prev = None

    def apply(self, mask: np.ndarray, values: Mapping[str, Any], px_scale: float = 1.0) -> np.ndarray:
        m = np.asarray(mask, np.float32)
        smooth = param_value(values, P_SMOOTH)
        if smooth > 0 and self._prev is not None and self._prev.shape == m.shape:
            m = cv2.addWeighted(self._prev, smooth, m, 1.0 - smooth, 0.0)
        self._prev = m

        threshold = param_value(values, P_THRESHOLD)
        if threshold > 0:
            m = (m >= threshold).astype(np.float32)

        grow = round(param_value(values, P_GROW) * px_scale)
        if grow:
            r = abs(grow)
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
            m = cv2.dilate(m, kernel) if grow > 0 else cv2.erode(m, kernel)

        sigma = param_value(values, P_FEATHER) * px_scale
        if sigma >= 0.3:  # below that the Gaussian kernel is a single pixel
            m = cv2.GaussianBlur(m, (0, 0), sigma)
        return m


def segment_frame(segmenter: Segmenter, treatment: MaskTreatment, rgb: np.ndarray,
                  values: Mapping[str, Any], full_size: bool = True) -> np.ndarray:
    """One frame, synchronously: configure, scale down, segment, treat, and (full_size) scale back.

    Returns an HxW float32 mask at rgb's resolution, or at the segmentation's (same aspect) when not
    full_size: the live loop keeps it small and lets the GPU upsample it while compositing.
    """
    _check_rgb(rgb)
    segmenter.configure(values)
    h, w = rgb.shape[:2]
    scale = param_value(values, P_SCALE)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    small = rgb if (sw, sh) == (w, h) else cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    raw = segmenter.segment(small)
    m = treatment.apply(raw, values, px_scale=sw / w)
    if full_size and m.shape != (h, w):
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(m, 0.0, 1.0, out=m)


# ---- the `segment` command ----------------------------------------------------------------------


