"""Per-stage timings, latency percentiles and health counters.

Times are kept in bounded rings (the last few thousand samples), so a show that runs for weeks reports
recent behaviour with constant memory. Faults are counted and logged once per distinct message (with the
traceback, when an exception caused it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from installation.core.errors import UserError

log = logging.getLogger("installation")

RING = 4096


def pace(t_start: float, index: int, fps: float, wait: Callable[[float], object],
         resync_after_s: float | None = None) -> float:
    """Waits (with `wait`, e.g. a stop event's) until frame `index` of a clock started at `t_start` and
    running at `fps` is due; counted from the start, so no drift builds up. When the frame is more than
    `resync_after_s` late, the clock restarts so that this frame is due now. Returns the clock's start."""
    delay = t_start + index / fps - time.monotonic()
    if delay > 0:
        wait(delay)
    elif resync_after_s is not None and delay < -resync_after_s:
        return time.monotonic() - index / fps  # fell far behind: resync
    return t_start


def percentiles(samples: Any, qs: tuple[int, ...] = (50, 95, 99)) -> dict[str, float]:
    a = np.asarray(list(samples), np.float64)
    if a.size == 0:
        return {f"p{q}": float("nan") for q in qs} | {"mean": float("nan")}
    out = {f"p{q}": round(float(np.percentile(a, q)), 3) for q in qs}
    out["mean"] = round(float(a.mean()), 3)
    return out


class Stats:
    """Thread-safe counters and timing rings for one run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.t_start = time.monotonic()
        self.stage_ms: dict[str, deque[float]] = {}
        self.latency_ms: deque[float] = deque(maxlen=RING)
        self.counters: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self._seen: set[tuple[str, str]] = set()
        self.last_fault = ""
        self.t_first_present: float | None = None
        self.t_last_present: float | None = None
        self._fps_window: deque[float] = deque(maxlen=120)

    def add_time(self, stage: str, ms: float) -> None:
        with self._lock:
            self.stage_ms.setdefault(stage, deque(maxlen=RING)).append(ms)

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add_time(stage, (time.perf_counter() - t0) * 1000.0)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def fault(self, kind: str, message: str, exc: BaseException | None = None) -> None:
        """A runtime fault: counted always, logged the first time each distinct message appears, with
        the exception's traceback when there is one (a code bug and a broken model then look different
        in the log, and a fault on every frame still logs once)."""
        with self._lock:
            self.faults[kind] += 1
            self.last_fault = f"{kind}: {message}"
            first = (kind, message) not in self._seen
            if first and len(self._seen) < 1000:
                self._seen.add((kind, message))
        if first:
            # a mistake the user can fix (a missing file) says so in its message; a traceback would bury it
            tb = exc if exc is not None and not isinstance(exc, UserError) else None
            log.warning("%s fault: %s", kind, message, exc_info=tb)

    def presented(self, t_capture: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.counters["frames_presented"] += 1
            self.latency_ms.append((now - t_capture) * 1000.0)
            if self.t_first_present is None:
                self.t_first_present = now
            self.t_last_present = now
            self._fps_window.append(now)

    def present_times(self) -> list[float]:
        """When the last frames were presented (monotonic s, oldest first; the show governor's frame rate)."""
        with self._lock:
            return list(self._fps_window)

    def fps(self) -> float:
        """Presented frames per second over the last couple of seconds."""
        with self._lock:
            w = list(self._fps_window)
        if len(w) < 2:
            return 0.0
        recent = [t for t in w if t >= w[-1] - 2.0]
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6) if len(recent) > 1 else 0.0

    def latency_p50(self) -> float:
        with self._lock:
            lat = list(self.latency_ms)[-120:]
        return float(np.median(lat)) if lat else float("nan")

    def to_dict(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._lock:
            n = self.counters["frames_presented"]
            span = ((self.t_last_present or 0) - (self.t_first_present or 0)) if n > 1 else 0.0
            out: dict[str, Any] = {
                "duration_s": round(time.monotonic() - self.t_start, 3),
                "frames_presented": n,
                "fps_mean": round((n - 1) / span, 3) if span > 0 else 0.0,
                "latency_ms": percentiles(self.latency_ms),
                "stage_ms": {k: percentiles(v, (50, 95)) for k, v in self.stage_ms.items()},
                "counters": dict(self.counters),
                "faults": dict(self.faults),
                "last_fault": self.last_fault,
            }
        if extra:
            out.update(extra)
        return out

    def write_json(self, path: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        d = self.to_dict(extra)
        Path(path).write_text(json.dumps(d, indent=2, default=str) + "\n")
        return d
