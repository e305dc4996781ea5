"""An int8 twin judged on the CPU that plays it, and the one measure and bar every judgement of a twin uses.

ONNX Runtime runs 8-bit convolutions with other integer kernels on a CPU with VNNI than on one with AVX2
alone, and their pictures differ: the leaves look's twin, 1.56 grey levels from model.onnx on the CPU that
made it (AVX-512 VNNI), painted 3-11 levels away on a 2-core EPYC with AVX2 only. So the figure written on
the card at `installation quantize` says nothing certain about another machine: at load, a twin is compared
with model.onnx again, here, on a few pictures, with the same measure and bar as quantize's, and refused
above the bar (the show plays model.onnx). The verdict is kept in the user's cache folder per twin file,
CPU (name and flags) and ONNX Runtime version, so it is judged once per machine, not at every start.

The pictures are scikit-image's photographs (a dependency: the sample clip is made from one of them), each
through the card's own chain (its steps that need no mask or earlier frame, as quantize's pictures).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from installation.core.cpu import cpu_name
from installation.core.files import atomic_write
from installation.core.paths import cache_dir
from installation.vision.preprocess import Chain

log = logging.getLogger("installation.models")

MAX_DIFF = 3.0  # grey levels (0..255) of mean absolute difference from model.onnx's pictures
PHOTOGRAPHS = ("astronaut", "coffee", "chelsea", "rocket")  # skimage.data: a person, things, an animal, a scene
VERDICTS = "int8-verdicts"  # the folder in the user's cache


def picture_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 pictures, in grey levels."""
    return float(np.abs(a.astype(np.int16) - b).mean())


def compare(paint_fp32: Callable[[np.ndarray], np.ndarray], paint_int8: Callable[[np.ndarray], np.ndarray],
            pictures: Sequence[np.ndarray]) -> tuple[float, float]:
    """(mean, worst) over the pictures of picture_diff between what the two models paint of each."""
    diffs = [picture_diff(paint_fp32(p), paint_int8(p)) for p in pictures]
    return float(np.mean(diffs)), float(np.max(diffs))


def judging_pictures(chain: Chain, size: tuple[int, int]) -> list[np.ndarray]:
    """The photographs as the model sees them: HxWx3 uint8 at `size`, through the chain's steps that need no
    mask or earlier frame."""
    from skimage import data

    steps = Chain.from_spec(chain.for_training().to_spec(), size)
    out = []
    for name in PHOTOGRAPHS:
        rgb = getattr(data, name)()
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        out.append(steps.apply(np.ascontiguousarray(rgb[:, :, :3]))[0])
    return out


@dataclass(frozen=True)
class Verdict:
    """How far a twin's pictures are from model.onnx's on one CPU with one ONNX Runtime."""

    twin_sha256: str
    mean: float
    worst: float
    pictures: int
    cpu: str
    onnxruntime: str
    judged: str  # when (UTC, ISO)
    cached: bool = False  # read from the cache folder (this start did not judge)

    @property
    def ok(self) -> bool:
        return self.mean <= MAX_DIFF

    def said(self) -> str:
        """The figures and where they came from, for the log, `check` and the HUD's model line."""
        how = f"verdict cached {self.judged[:10]}" if self.cached else "judged now"
        return (f"{self.mean:.2f} grey levels from model.onnx on average over {self.pictures} pictures (worst "
                f"{self.worst:.2f}; bar {MAX_DIFF:g}) on this CPU, {self.cpu}, ONNX Runtime {self.onnxruntime}; "
                f"{how}")


def verdict_file(twin_sha256: str, ort_version: str, cpu: str | None = None) -> Path:
    """Where the verdict on a twin (by its bytes) for this CPU and ONNX Runtime is kept."""
    key = hashlib.sha256(f"{twin_sha256}\n{cpu or cpu_name()}\n{ort_version}".encode()).hexdigest()[:32]
    return cache_dir() / VERDICTS / f"{key}.json"


def cached_verdict(twin_sha256: str, ort_version: str) -> Verdict | None:
    """The verdict kept for this twin, CPU and ONNX Runtime, or None (never judged, or unreadable)."""
    path = verdict_file(twin_sha256, ort_version)
    try:
        v = Verdict(**{**json.loads(path.read_text()), "cached": True})
    except (OSError, ValueError, TypeError):
        return None
    same = (v.twin_sha256, v.cpu, v.onnxruntime) == (twin_sha256, cpu_name(), ort_version)
    return v if same else None


def store_verdict(v: Verdict) -> Path:
    """Keep a verdict; a cache folder that can't be written costs a judgement at the next start, no more."""
    path = verdict_file(v.twin_sha256, v.onnxruntime, v.cpu)
    try:
        atomic_write(path, json.dumps({k: x for k, x in asdict(v).items() if k != "cached"}, indent=1) + "\n",
                     sync=False)
    except OSError as e:
        log.warning("int8 verdict not kept in %s (%s): it will be judged again at the next start", path, e)
    return path


def judge(twin_sha256: str, ort_version: str, paint_fp32: Callable[[np.ndarray], np.ndarray],
          paint_int8: Callable[[np.ndarray], np.ndarray], chain: Chain, size: tuple[int, int]) -> Verdict:
    """Compare the two models here on the judging pictures, keep the verdict and return it."""
    pictures = judging_pictures(chain, size)
    mean, worst = compare(paint_fp32, paint_int8, pictures)
    v = Verdict(twin_sha256, round(mean, 3), round(worst, 3), len(pictures), cpu_name(), ort_version,
                _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat())
    store_verdict(v)
    return v
