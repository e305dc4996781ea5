"""The segmentation worker: a thread that takes the newest frame offered, builds (and rebuilds, when
seg/mode or seg/model change) the segmenter that `vision/segment.py` makes, runs it with the mask
treatment, and publishes the newest mask, so segmentation stays off the live loop's clock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from installation.core.frames import LatestSlot, SlotClosed
from installation.vision import segment
from installation.vision.segment import (
    P_EVERY,
    P_MODE,
    P_MODEL,
    MaskTreatment,
    Segmenter,
    make_segmenter,
    param_value,
    segment_frame,
)

log = logging.getLogger("installation.segment")


SegmenterFactory = Callable[[str, Path, Mapping[str, Any]], "Segmenter | None"]


WARM_UP = -1  # the index of warm_up()'s frame: source frames count from 0


class SegmentWorker:
    """Segments on its own thread so the live loop keeps its rate.

    submit() hands a frame over through a LatestSlot (never blocks; a frame the worker had no time for
    is replaced by the newer one); latest() returns the newest mask, at the segmentation's resolution
    (seg/scale of the submitted frame's, same aspect), with that frame's index. A segmenter that
    raises leaves the previous mask in place; each failure goes to `on_fault` (the show's Stats.fault:
    HUD, stats and health counters), or without one is logged once per distinct message.
    The caller must not write into a submitted picture afterwards (frames are never modified in place).
    """

    def __init__(self, models_dir: str | Path | None = None,
                 factory: SegmenterFactory = make_segmenter, name: str = "segment",
                 on_fault: Callable[[str, str, BaseException], None] | None = None) -> None:
        # read when built, not when imported: the environment or a test may point it elsewhere
        self.models_dir = Path(segment.DEFAULT_MODELS_DIR if models_dir is None else models_dir)
        self._on_fault = on_fault
        self._factory = factory
        self._slot: LatestSlot[tuple[int, np.ndarray, Mapping[str, Any]]] = LatestSlot(name)
        self._cond = threading.Condition()
        self._latest: tuple[np.ndarray, int] | None = None
        self._relearn = threading.Event()
        self._warmed = threading.Event()
        self._seen_errors: set[str] = set()
        self._submits = 0
        self._segmenter: Segmenter | None = None
        self._key: tuple[str, str] | None = None  # (mode, model) the segmenter was built for
        self._treatment = MaskTreatment()
        self.failures = 0
        self.segmented = 0
        self.last_error: str | None = None
        self.last_ms = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def slot(self) -> LatestSlot[tuple[int, np.ndarray, Mapping[str, Any]]]:
        return self._slot

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, index: int, rgb: np.ndarray, snapshot: Mapping[str, Any], every: int = 1) -> bool:
        """Offer a frame; True when it was handed to the worker (every seg/every-th call is, or every
        `every`-th where that is sparser: the show's governor asks for it when frames do not fit)."""
        every = max(int(param_value(snapshot, P_EVERY)), every)
        n = self._submits
        self._submits += 1
        if n % every and param_value(snapshot, P_MODE) != "none":
            return False
        return self._slot.put((index, rgb, snapshot))

    def warm_up(self, rgb: np.ndarray, snapshot: Mapping[str, Any], timeout: float = 10.0) -> float | None:
        """Build the segmenter for the snapshot's mode and run it on `rgb`, before the source starts, and
        wait for it: the first real frame's mask then takes a frame's time, not the segmenter's load
        (50-100 ms on a 2-core machine). Nothing is published, and the mask's smoothing does not see it.
        Runs it a second time and returns how long that took, in ms (what a frame's segmentation costs
        here: the governor's first guess); None when it did not finish in time."""
        took = None
        for _ in range(2):
            self._warmed.clear()
            t0 = time.perf_counter()
            if not self._slot.put((WARM_UP, rgb, snapshot)) or not self._warmed.wait(timeout):
                return None
            took = (time.perf_counter() - t0) * 1000.0
        return took

    def relearn(self) -> None:
        """Learn the empty room again (the show calls this when it drains seg/relearn)."""
        self._relearn.set()

    def latest(self) -> tuple[np.ndarray, int] | None:
        """(mask HxW float32 at seg/scale of the submitted resolution, frame index), or None."""
        with self._cond:
            return self._latest

    def wait_for(self, index: int, timeout: float = 5.0) -> tuple[np.ndarray, int] | None:
        """Wait until a mask for frame `index` (or a later one) is out; for tests, tools and lockstep runs."""
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None and self._latest[1] >= index, timeout)
            return self._latest

    def close(self, timeout: float = 5.0) -> None:
        self._slot.close()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._drop_segmenter()

    # -- on the worker thread --

    def _run(self) -> None:
        while True:
            try:
                item = self._slot.get(timeout=0.5)
            except SlotClosed:
                return
            if item is not None:
                self._process(*item)
                if item[0] == WARM_UP:
                    self._warmed.set()

    def _process(self, index: int, rgb: np.ndarray, values: Mapping[str, Any]) -> None:
        try:
            mode = param_value(values, P_MODE)
            key = (mode, param_value(values, P_MODEL))
            if key != self._key:
                self._drop_segmenter()
                if mode == "none":
                    self._key = key
                    self._publish(None)
                    return
                self._segmenter = self._factory(mode, self.models_dir, values)
                self._key = key  # only once built: a failed build is tried again on the next frame
            if self._segmenter is None:
                return
            if index == WARM_UP:
                segment_frame(self._segmenter, MaskTreatment(), rgb, values, full_size=False)
                return
            if self._relearn.is_set():
                self._relearn.clear()
                relearn = getattr(self._segmenter, "relearn", None)
                if relearn is not None:
                    relearn()
            t0 = time.perf_counter()
            mask = segment_frame(self._segmenter, self._treatment, rgb, values, full_size=False)
            self.last_ms = (time.perf_counter() - t0) * 1000.0
            self.segmented += 1
            self._publish((mask, index))
        except Exception as e:  # one bad frame or a missing model must not end the thread
            if index == WARM_UP:
                return  # the first real frame meets the same fault and says it
            self.failures += 1
            msg = f"{type(e).__name__}: {e}"
            self.last_error = msg
            if self._on_fault is not None:
                self._on_fault("segment", f"mode {param_value(values, P_MODE)}: {msg}", e)
            elif msg not in self._seen_errors:
                self._seen_errors.add(msg)
                log.error("segmentation failed (mode %s), keeping the previous mask: %s",
                          param_value(values, P_MODE), msg)

    def _publish(self, result: tuple[np.ndarray, int] | None) -> None:
        with self._cond:
            self._latest = result
            self._cond.notify_all()

    def _drop_segmenter(self) -> None:
        if self._segmenter is not None:
            try:
                self._segmenter.close()
            finally:
                self._segmenter = None
        self._key = None
        self._treatment.reset()  # another segmenter's memory would blend into the new one's masks
