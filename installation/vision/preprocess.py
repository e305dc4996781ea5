"""The preprocessing vocabulary, defined once: the live show, the dataset builder and the trainer call it.

A chain is a list of named steps with arguments, as written in a model card, a dataset.toml or a show:

    [[preprocess]]
    step = "blur"
    sigma = 2.0

Every step is a pure function of (image, args, context). Images are HxWx3 uint8 RGB in and out: grey
steps keep three equal channels, so any chain feeds a 3-channel model. Geometric steps carry the mask
along. Temporal steps (lerp_input, feedback, lerp_output) hold state, are live-only, and training
skips them. Each step argument is also a live parameter (`pre/<name>`); a show seeds those from the
model's card, so at the card's values the show computes exactly what training saw.

No window, thread or GPU code here: this module must import anywhere the trainer runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from installation.core.params import Param

CARD_SCHEMA_VERSION = 1


class ChainError(ValueError):
    """A chain spec that can't be built; `path` says where (e.g. 'preprocess[2].sigma')."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass
class StepContext:
    """What a step may read besides the picture. `state` is the step's own, between frames."""

    size: tuple[int, int]  # the model's input (height, width)
    mask: np.ndarray | None = None  # HxW float32 in [0, 1], aligned with the image
    state: dict[str, Any] = field(default_factory=dict)
    prev_output: np.ndarray | None = None  # the last picture shown, for feedback


StepFn = Callable[[np.ndarray, Mapping[str, Any], StepContext], np.ndarray]


@dataclass(frozen=True)
class StepDef:
    name: str
    fn: StepFn
    args: Mapping[str, Param]  # argument name -> the live parameter that carries it
    description: str
    geometric: bool = False  # moves pixels: the mask must follow
    live_only: bool = False  # temporal: holds state, skipped by training
    stage: str = "input"  # "input" (before the model) or "output" (after it)


# ---- the steps ---------------------------------------------------------------------------------

def _resize_mask(mask: np.ndarray | None, w: int, h: int) -> np.ndarray | None:
    if mask is None or mask.shape[:2] == (h, w):
        return mask
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA if mask.shape[1] > w else cv2.INTER_LINEAR)


def _flip(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    if not a["flip"]:
        return img
    # cv2.flip, not a reversed-stride numpy copy: same pixels, ~30x less time at 1280x720 (10 ms -> 0.3 ms)
    if ctx.mask is not None:
        ctx.mask = cv2.flip(np.ascontiguousarray(ctx.mask), 1)
    return cv2.flip(np.ascontiguousarray(img), 1)


def crop_box(h: int, w: int, target_h: int, target_w: int) -> tuple[int, int, int, int]:
    """The centred box (y0, x0, y1, x1) of the model's aspect inside an h x w picture."""
    aspect = target_w / target_h
    if w / h > aspect:
        cw, ch = round(h * aspect), h
    else:
        cw, ch = w, round(w / aspect)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return y0, x0, y0 + ch, x0 + cw


def letterbox_box(h: int, w: int, target_h: int, target_w: int) -> tuple[int, int, int, int]:
    """The letterbox of an h x w picture at the model's aspect: the canvas (side_h, side_w) holding the
    whole picture with black bars, and the picture's top-left (y0, x0) on it: (y0, x0, side_h, side_w)."""
    aspect = target_w / target_h
    side_w, side_h = (w, round(w / aspect)) if w / h > aspect else (round(h * aspect), h)
    return (side_h - h) // 2, (side_w - w) // 2, side_h, side_w


def _scaled_box(box: tuple[int, int, int, int], h: int, w: int, mh: int, mw: int) -> tuple[int, int, int, int]:
    """A box in an h x w picture, in the coordinates of its mask (same aspect, any resolution)."""
    if (mh, mw) == (h, w):
        return box
    y0, x0, y1, x1 = box
    sy, sx = mh / h, mw / w
    my0, mx0 = round(y0 * sy), round(x0 * sx)
    return my0, mx0, max(round(y1 * sy), my0 + 1), max(round(x1 * sx), mx0 + 1)


def _crop(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    """The mask may be smaller than the picture (segmented at a lower resolution): it is cut by the same
    box, scaled, and stays small until something needs it at the picture's size."""
    h, w = img.shape[:2]
    th, tw = ctx.size
    m = ctx.mask
    if a["crop"] == "centre":
        y0, x0, y1, x1 = crop_box(h, w, th, tw)
        if m is not None:
            my0, mx0, my1, mx1 = _scaled_box((y0, x0, y1, x1), h, w, *m.shape[:2])
            ctx.mask = m[my0:my1, mx0:mx1]
        return img[y0:y1, x0:x1]
    if a["crop"] == "fit":  # letterbox: the whole picture, black bars, mask zero in the bars
        y0, x0, side_h, side_w = letterbox_box(h, w, th, tw)
        out = np.zeros((side_h, side_w, 3), np.uint8)
        out[y0:y0 + h, x0:x0 + w] = img
        if m is not None:
            mh, mw = m.shape[:2]
            sy, sx = mh / h, mw / w
            canvas = np.zeros((max(1, round(side_h * sy)), max(1, round(side_w * sx))), np.float32)
            my0, mx0 = round(y0 * sy), round(x0 * sx)
            canvas[my0:my0 + mh, mx0:mx0 + mw] = m[: canvas.shape[0] - my0, : canvas.shape[1] - mx0]
            ctx.mask = canvas
        return out
    return img  # "none": stretch happens in resize


def _resize(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    th, tw = ctx.size
    h, w = img.shape[:2]
    if (h, w) == (th, tw):
        return img
    interp = cv2.INTER_AREA if h * w > th * tw else cv2.INTER_CUBIC
    ctx.mask = _resize_mask(ctx.mask, tw, th)
    return cv2.resize(img, (tw, th), interpolation=interp)


def _grey3(g: np.ndarray) -> np.ndarray:
    return np.repeat(g[:, :, None], 3, axis=2)


def _grey_of(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def _grey(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    return _grey3(_grey_of(img))


def _blur(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    s = float(a["blur"])
    return img if s <= 0 else cv2.GaussianBlur(img, (0, 0), s)


def _median(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    k = int(a["median"])
    if k < 2:
        return img
    return cv2.medianBlur(img, k | 1)


def _canny(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    lo, hi = float(a["canny_low"]), float(a["canny_high"])
    return _grey3(cv2.Canny(_grey_of(img), min(lo, hi), max(lo, hi)))


def _threshold(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    _, t = cv2.threshold(_grey_of(img), float(a["threshold"]), 255, cv2.THRESH_BINARY)
    return _grey3(t)


def _adaptive_threshold(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    block = max(3, int(a["adaptive_block"]) | 1)
    t = cv2.adaptiveThreshold(_grey_of(img), 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY,
                              block, float(a["adaptive_c"]))
    return _grey3(t)


def _invert(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    return 255 - img


def _posterize(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    n = int(a["posterize"])
    if n >= 256:
        return img
    step = 255.0 / (n - 1)
    lut = (np.round(np.round(np.arange(256) / step) * step)).clip(0, 255).astype(np.uint8)
    return cv2.LUT(img, lut)


def _downscale(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    """Learning to See's later input: shrink by a factor (area), then back up (cubic)."""
    f = float(a["downscale"])
    if f <= 1:
        return img
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, round(w / f)), max(1, round(h / f))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _mask(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    """Use the segmenter's mask: black out the room, or feed the silhouette itself."""
    h, w = img.shape[:2]
    m = _resize_mask(ctx.mask, w, h)
    if m is None:
        m = np.ones((h, w), np.float32)
    mode = a["mask_mode"]
    if mode == "cutout":
        return (img.astype(np.float32) * m[:, :, None]).astype(np.uint8)
    sil = (m * 255).astype(np.uint8)
    if mode == "silhouette":
        return _grey3(sil)
    edges = cv2.Canny(_grey_of(img), 50, 150)  # silhouette_edges: grey body, white edges on it
    body = (sil // 2) | (edges & (sil > 127).astype(np.uint8) * 255)
    return _grey3(body)


def _lerp_input(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    return _lerp(img, float(a["input_lerp"]), ctx)


def _lerp_output(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    return _lerp(img, float(a["output_lerp"]), ctx)


def _lerp(img: np.ndarray, amount: float, ctx: StepContext) -> np.ndarray:
    """Running blend with the previous result: amount 0 = no memory, 0.9 = dreamy."""
    prev = ctx.state.get("acc")
    cur = img.astype(np.float32)
    if prev is None or prev.shape != cur.shape or amount <= 0:
        ctx.state["acc"] = cur
        return img
    acc = prev * amount + cur * (1.0 - amount)
    ctx.state["acc"] = acc
    return (acc + 0.5).astype(np.uint8)


def _feedback(img: np.ndarray, a: Mapping[str, Any], ctx: StepContext) -> np.ndarray:
    """Blend the last picture shown into the model's input: the model answering itself."""
    amount = float(a["feedback"])
    prev = ctx.prev_output
    if amount <= 0 or prev is None:
        return img
    h, w = img.shape[:2]
    if prev.shape[:2] != (h, w):
        prev = cv2.resize(prev, (w, h), interpolation=cv2.INTER_AREA)
    return cv2.addWeighted(img, 1.0 - amount, prev[:, :, :3], amount, 0.0)


def _p(name: str, kind: str, default: Any, lo: float | None = None, hi: float | None = None,
       desc: str = "", unit: str = "", choices: tuple[str, ...] = (), smoothing_s: float = 0.0) -> Param:
    return Param(name, kind, default, lo, hi, choices, unit, desc, smoothing_s)  # type: ignore[arg-type]


P_FLIP = _p("pre/flip", "bool", True, desc="mirror the camera picture, as a mirror would")
P_CROP = _p("pre/crop", "choice", "centre", choices=("centre", "fit", "none"),
            desc="how the camera picture becomes the model's aspect: centre-crop, letterbox, or stretch")
P_BLUR = _p("pre/blur", "float", 0.0, 0, 20, "Gaussian blur sigma on the model's input", "px")
P_MEDIAN = _p("pre/median", "int", 0, 0, 15, "median filter size (0 or 1: off)", "px")
P_CANNY_LOW = _p("pre/canny_low", "float", 50.0, 0, 500, "Canny edges: lower hysteresis threshold")
P_CANNY_HIGH = _p("pre/canny_high", "float", 150.0, 0, 500, "Canny edges: upper hysteresis threshold")
P_THRESHOLD = _p("pre/threshold", "float", 127.0, 0, 255, "binary threshold level on grey")
P_ADAPT_BLOCK = _p("pre/adaptive_block", "int", 11, 3, 101, "adaptive threshold neighbourhood", "px")
P_ADAPT_C = _p("pre/adaptive_c", "float", 2.0, -50, 50, "adaptive threshold offset from the local mean")
P_POSTERIZE = _p("pre/posterize", "int", 4, 2, 256, "levels per channel (256: off)")
P_DOWNSCALE = _p("pre/downscale", "float", 24.0, 1, 64, "shrink then regrow by this factor (1: off)", "x")
P_MASK_MODE = _p("pre/mask_mode", "choice", "cutout", choices=("cutout", "silhouette", "silhouette_edges"),
                 desc="how the person mask shapes the input: cut out, silhouette, silhouette with edges")
P_INPUT_LERP = _p("pre/input_lerp", "float", 0.0, 0, 0.99,
                  "blend each input with the previous one (0: none, 0.9: dreamy)", smoothing_s=0.2)
P_FEEDBACK = _p("pre/feedback", "float", 0.0, 0, 1, "blend the last output into the model's input",
                smoothing_s=0.2)
P_OUTPUT_LERP = _p("post/output_lerp", "float", 0.0, 0, 0.99,
                   "blend each model output with the previous one (0.5-0.8 smooths flicker)", smoothing_s=0.2)

STEPS: dict[str, StepDef] = {s.name: s for s in (
    StepDef("flip", _flip, {"flip": P_FLIP}, "mirror left-right", geometric=True),
    StepDef("crop", _crop, {"crop": P_CROP}, "centre-crop or letterbox to the model's aspect", geometric=True),
    StepDef("resize", _resize, {}, "resize to the model's input size (area down, cubic up)", geometric=True),
    StepDef("grey", _grey, {}, "greyscale (three equal channels)"),
    StepDef("blur", _blur, {"blur": P_BLUR}, "Gaussian blur"),
    StepDef("median", _median, {"median": P_MEDIAN}, "median filter"),
    StepDef("canny", _canny, {"canny_low": P_CANNY_LOW, "canny_high": P_CANNY_HIGH}, "Canny edges, white on black"),
    StepDef("threshold", _threshold, {"threshold": P_THRESHOLD}, "binary threshold of the grey picture"),
    StepDef("adaptive_threshold", _adaptive_threshold, {"adaptive_block": P_ADAPT_BLOCK, "adaptive_c": P_ADAPT_C},
            "local-mean threshold of the grey picture"),
    StepDef("invert", _invert, {}, "negative"),
    StepDef("posterize", _posterize, {"posterize": P_POSTERIZE}, "reduce to N levels per channel"),
    StepDef("downscale", _downscale, {"downscale": P_DOWNSCALE}, "shrink (area) and regrow (cubic)"),
    StepDef("mask", _mask, {"mask_mode": P_MASK_MODE}, "apply the person mask (needs a segmenter)"),
    StepDef("lerp_input", _lerp_input, {"input_lerp": P_INPUT_LERP}, "temporal blend of inputs", live_only=True),
    StepDef("feedback", _feedback, {"feedback": P_FEEDBACK}, "blend in the last output", live_only=True),
    StepDef("lerp_output", _lerp_output, {"output_lerp": P_OUTPUT_LERP}, "temporal blend of outputs",
            live_only=True, stage="output"),
)}

PARAMS: list[Param] = [p for s in STEPS.values() for p in s.args.values()]

# Chains with names: the dataset builder offers these, and cards may name them.
NAMED_CHAINS: dict[str, list[dict[str, Any]]] = {
    "edges": [{"step": "flip"}, {"step": "crop"}, {"step": "resize"},
              {"step": "blur", "blur": 1.0}, {"step": "canny"}, {"step": "lerp_input", "input_lerp": 0.3},
              {"step": "lerp_output", "output_lerp": 0.5}],
    "grey_blur_downscale": [{"step": "flip"}, {"step": "crop"}, {"step": "resize"}, {"step": "grey"},
                            {"step": "downscale", "downscale": 24.0}, {"step": "lerp_output", "output_lerp": 0.6}],
    "silhouette": [{"step": "flip"}, {"step": "crop"}, {"step": "resize"},
                   {"step": "mask", "mask_mode": "silhouette"}, {"step": "lerp_output", "output_lerp": 0.5}],
    "silhouette_edges": [{"step": "flip"}, {"step": "crop"}, {"step": "resize"},
                         {"step": "mask", "mask_mode": "silhouette_edges"},
                         {"step": "lerp_output", "output_lerp": 0.5}],
    "plain": [{"step": "flip"}, {"step": "crop"}, {"step": "resize"}],
}


# ---- chains ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    kind: str
    args: Mapping[str, Any]  # argument name -> value, coerced by the argument's Param

    @property
    def definition(self) -> StepDef:
        return STEPS[self.kind]


class ChainState:
    """The memory of a live chain's temporal steps, one dict per step."""

    def __init__(self) -> None:
        self.per_step: dict[int, dict[str, Any]] = {}

    def of(self, i: int) -> dict[str, Any]:
        return self.per_step.setdefault(i, {})

    def reset(self) -> None:
        self.per_step.clear()


@dataclass(frozen=True)
class Chain:
    steps: tuple[Step, ...]
    size: tuple[int, int]  # the model's input (height, width)

    @classmethod
    def from_spec(cls, spec: Any, size: tuple[int, int] | int, path: str = "preprocess") -> Chain:
        """Build from a card/show/dataset list, or a NAMED_CHAINS name. Raises ChainError."""
        if isinstance(size, int):
            size = (size, size)
        if isinstance(spec, str):
            if spec not in NAMED_CHAINS:
                raise ChainError(path, f"unknown chain name {spec!r}; known: {', '.join(NAMED_CHAINS)}")
            spec = NAMED_CHAINS[spec]
        if not isinstance(spec, list):
            raise ChainError(path, "expected a list of steps (or a chain name)")
        steps = []
        for i, item in enumerate(spec):
            here = f"{path}[{i}]"
            if not isinstance(item, Mapping) or "step" not in item:
                raise ChainError(here, "expected a table with a 'step' key")
            kind = item["step"]
            if kind not in STEPS:
                raise ChainError(f"{here}.step", f"unknown step {kind!r}; known: {', '.join(STEPS)}")
            d = STEPS[kind]
            args: dict[str, Any] = {}
            for key, value in item.items():
                if key == "step":
                    continue
                if key not in d.args:
                    known = ", ".join(d.args) or "none"
                    raise ChainError(f"{here}.{key}", f"step {kind!r} takes no argument {key!r} (takes: {known})")
                try:
                    args[key] = d.args[key].coerce(value)
                except ValueError as e:
                    raise ChainError(f"{here}.{key}", str(e)) from None
            for key, p in d.args.items():
                args.setdefault(key, p.default)
            steps.append(Step(kind, args))
        return cls(tuple(steps), size)

    def to_spec(self) -> list[dict[str, Any]]:
        return [{"step": s.kind, **dict(s.args)} for s in self.steps]

    def without(self, *kinds: str) -> Chain:
        return Chain(tuple(s for s in self.steps if s.kind not in kinds), self.size)

    def for_training(self) -> Chain:
        """The chain without its temporal steps: what the dataset builder and trainer apply."""
        return Chain(tuple(s for s in self.steps if not s.definition.live_only), self.size)

    def param_values(self) -> dict[str, Any]:
        """The card's arguments as live parameter values, to seed the store at load."""
        out: dict[str, Any] = {}
        for s in self.steps:
            for key, p in s.definition.args.items():
                out.setdefault(p.name, s.args[key])
        return out

    def _run(self, img: np.ndarray, stage: str, mask: np.ndarray | None, values: Mapping[str, Any] | None,
             state: ChainState | None, prev_output: np.ndarray | None,
             only_geometric: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        ctx = StepContext(self.size, mask, {}, prev_output)
        for i, s in enumerate(self.steps):
            d = s.definition
            if d.stage != stage or (d.live_only and state is None):
                continue
            if only_geometric and (not d.geometric or d.name == "resize"):
                continue
            args = s.args if values is None else {k: values.get(p.name, s.args[k]) for k, p in d.args.items()}
            ctx.state = state.of(i) if state is not None else {}
            img = d.fn(img, args, ctx)
        return img, ctx.mask

    def apply(self, img: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Training's view: the card's arguments, no temporal steps. Returns (model input, mask)."""
        return self._run(img, "input", mask, None, None, None)

    def apply_live(self, img: np.ndarray, values: Mapping[str, Any], state: ChainState,
                   mask: np.ndarray | None = None, prev_output: np.ndarray | None = None,
                   ) -> tuple[np.ndarray, np.ndarray | None]:
        """The show's view: live parameter values (a Snapshot), temporal steps with their state."""
        return self._run(img, "input", mask, values, state, prev_output)

    def apply_output(self, img: np.ndarray, values: Mapping[str, Any], state: ChainState) -> np.ndarray:
        """The chain's output-stage steps (the output lerp) on the model's picture."""
        return self._run(img, "output", None, values, state, None)[0]

    def view(self, img: np.ndarray, values: Mapping[str, Any] | None = None,
             mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Only the flip and crop, at full resolution: the camera picture aligned with the model's."""
        return self._run(img, "input", mask, values, None, None, only_geometric=True)


# ---- tensors -----------------------------------------------------------------------------------

def to_tensor(img: np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0),
              out: np.ndarray | None = None) -> np.ndarray:
    """HxWx3 uint8 -> 1x3xHxW float32 in value_range (pix2pix: [-1, 1])."""
    lo, hi = value_range
    chw = img.transpose(2, 0, 1)[None]
    if out is None:
        out = np.empty(chw.shape, np.float32)
    np.multiply(chw, (hi - lo) / 255.0, out=out, casting="unsafe")
    out += lo
    return out


def from_tensor(t: np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """1x3xHxW (or 3xHxW) float -> HxWx3 uint8, clipped."""
    lo, hi = value_range
    chw = t[0] if t.ndim == 4 else t
    x = (chw.astype(np.float32, copy=False) - lo) * (255.0 / (hi - lo))
    return np.ascontiguousarray(np.clip(x + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0))
