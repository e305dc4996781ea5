"""`installation latency-test`: glass-to-glass latency, measured with the show's own camera and screen.

Point the camera at the screen (or the projection). The window turns black, then white, then black...
and for each change the runtime waits for the camera to see it: the time from presenting the change
to the arrival of the first camera frame that shows it is the display's latency plus the camera's
(exposure, transfer, decoding). Add the loop's own capture -> present latency (`installation bench`)
for the whole chain from a visitor's movement to the picture answering it.

The black and white levels the camera sees are measured first (they depend on the room, the
projector and the exposure); a change counts when the centre of the camera picture crosses the
midpoint between them. `--self-test` swaps the camera for a read-back of the rendered frame through
a known delay line, so the detection can be checked with no camera at all.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from installation.core.errors import UserError
from installation.core.frames import Frame

log = logging.getLogger("installation.latency_test")

MIN_CONTRAST = 20.0  # grey levels between the black and the white the camera sees; less: it can't see the screen


def brightness(img: np.ndarray, roi: float = 0.5) -> float:
    """Mean grey level (0..255) of the picture's centre (`roi` of each side): the screen's middle,
    away from the bezels and the room around it."""
    h, w = img.shape[:2]
    dy, dx = int(h * (1 - roi) / 2), int(w * (1 - roi) / 2)
    centre = img[dy:h - dy or h, dx:w - dx or w]
    small = cv2.resize(centre, (32, 32), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if small.ndim == 3 else small
    return float(grey.mean())


@dataclass
class FlashDetector:
    """Pairs each presented change (arm) with the first later camera frame that crossed the midpoint
    in the expected direction (feed); the difference of their times is one latency sample."""

    black: float
    white: float
    latencies_ms: list[float] = field(default_factory=list)
    missed: int = 0
    _expect: str | None = None
    _t_flip: float = 0.0

    def __post_init__(self) -> None:
        if self.white - self.black < MIN_CONTRAST:
            raise UserError(f"the camera sees black as {self.black:.0f} and white as {self.white:.0f}: too little "
                            "difference to time", expected=f"the camera facing the screen, at least {MIN_CONTRAST:.0f} "
                            "grey levels apart (darken the room, fix the exposure)")

    @property
    def threshold(self) -> float:
        return (self.black + self.white) / 2

    @property
    def armed(self) -> bool:
        return self._expect is not None

    def arm(self, level: str, t_flip: float) -> None:
        if self._expect is not None:
            self.missed += 1
        self._expect, self._t_flip = level, t_flip

    def feed(self, level: float, t_capture: float) -> float | None:
        """A camera frame's brightness and arrival time; the latency in ms when it shows the change."""
        if self._expect is None or t_capture < self._t_flip:
            return None
        seen = "white" if level > self.threshold else "black"
        if seen != self._expect:
            return None
        ms = (t_capture - self._t_flip) * 1000.0
        self.latencies_ms.append(ms)
        self._expect = None
        return ms


class ReadbackSource:
    """A stand-in camera for the self-test: each recv() reads the display's current pixels back and
    hands over the newest picture read at least `delay_s` earlier, stamped as arriving `delay_s` after
    it was read, like a camera with that much lag.
    Runs on the GL thread (recv is called from the test's loop there)."""

    name = "readback"
    fps = 0.0
    connected = True
    dropped = 0

    def __init__(self, display: Any, delay_s: float = 0.05) -> None:
        self.display = display
        self.delay_s = delay_s
        self._line: deque[tuple[float, np.ndarray]] = deque()
        self.index = 0
        self.size = display.size

    def recv(self, timeout: float | None = None) -> Frame | None:
        now = time.monotonic()
        self._line.append((now, self.display.read()))
        picked = None
        while self._line and self._line[0][0] <= now - self.delay_s:
            picked = self._line.popleft()
        if picked is None:
            time.sleep(0.002)
            return None
        self._line.appendleft(picked)  # the newest old-enough picture, until a newer one is old enough
        self.index += 1
        t_arrival = picked[0] + self.delay_s  # when a camera with this lag would have delivered it
        return Frame(picked[1], self.index, t_arrival, t_arrival)

    def close(self) -> None:
        self._line.clear()


def present_level(display: Any, level: str) -> float:
    """Fill the screen black or white and present it; the time it was handed to the display."""
    v = 1.0 if level == "white" else 0.0
    display.fbo.use()
    display.ctx.clear(v, v, v, 1.0)
    display.ctx.finish()
    display.flip()
    return time.monotonic()


def _levels(display: Any, source: Any, level: str, seconds: float) -> list[float]:
    present_level(display, level)
    t_end = time.monotonic() + seconds
    t_start = time.monotonic() + seconds / 2  # let the camera's exposure settle first
    seen = []
    while time.monotonic() < t_end:
        display.poll()
        f = source.recv(timeout=0.05)
        if f is not None and f.t_capture >= t_start:
            seen.append(brightness(f.image))
    if not seen:
        raise UserError("no camera frames arrived while calibrating", expected="a working camera")
    return seen


def run_latency_test(display: Any, source: Any, flashes: int = 20, period_s: float = 0.5,
                     settle_s: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """Calibrate, flash `flashes` times, return the latencies and their summary."""
    black = statistics.median(_levels(display, source, "black", settle_s))
    white = statistics.median(_levels(display, source, "white", settle_s))
    det = FlashDetector(black, white)
    present_level(display, "black")
    time.sleep(period_s)
    rng = random.Random(seed)
    for i in range(flashes):
        level = "white" if i % 2 == 0 else "black"
        det.arm(level, present_level(display, level))
        # jitter, so the flashes don't lock to the camera's frame clock and sample one phase only
        t_next = time.monotonic() + period_s * (0.75 + 0.5 * rng.random())
        while time.monotonic() < t_next:
            display.poll()
            f = source.recv(timeout=0.01)
            if f is not None and det.armed:
                det.feed(brightness(f.image), f.t_capture)
        if det.armed:  # the change never came back within the period
            det.missed += 1
            det._expect = None
    lat = det.latencies_ms
    summary: dict[str, Any] = {"flashes": flashes, "detected": len(lat), "missed": det.missed,
                               "black_level": round(black, 1), "white_level": round(white, 1),
                               "period_s": period_s, "latencies_ms": [round(x, 2) for x in lat]}
    if lat:
        a = np.asarray(lat)
        summary.update(p50_ms=round(float(np.percentile(a, 50)), 2), p95_ms=round(float(np.percentile(a, 95)), 2),
                       min_ms=round(float(a.min()), 2), max_ms=round(float(a.max()), 2))
    return summary


def cmd_latency_test(args: argparse.Namespace) -> int:
    from installation.app import default_registry, load_show
    from installation.media.sources import open_source
    from installation.render.displays import HeadlessDisplay, WindowDisplay, has_screen

    cfg = load_show(args.show, default_registry())
    r = cfg.render
    if args.self_test:
        display: Any = HeadlessDisplay((r.width, r.height))
        source: Any = ReadbackSource(display, args.delay)
    else:
        if not has_screen():
            raise UserError("no screen to flash", expected="a display (or --self-test to check the tool)")
        display = WindowDisplay(fullscreen=not args.window, screen=r.screen, size=(r.width, r.height), vsync=r.vsync)
        src = cfg.source
        if src.kind != "camera":
            raise UserError(f"the show's source is {src.kind}", key="source.kind",
                            expected="a camera facing the screen")
        source = open_source("camera", **src.model_dump(exclude={"kind", "video", "loop"}))
    try:
        summary = run_latency_test(display, source, args.flashes, args.period)
    finally:
        source.close()
        display.close()
    summary["mode"] = "self-test (read-back, delay %.0f ms)" % (args.delay * 1000) if args.self_test else "camera"
    print(f"{summary['detected']}/{summary['flashes']} flashes seen (black {summary['black_level']}, white "
          f"{summary['white_level']})" + (f": glass-to-glass p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms, "
                                         f"min {summary['min_ms']} ms" if summary["detected"] else ""))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["detected"] else 1


def add_commands(sub: Any) -> None:
    p = sub.add_parser("latency-test", help="glass-to-glass latency: flash the screen, time it through the camera")
    p.add_argument("show", nargs="?", default=None, help="a show file (its camera and screen), default: default")
    p.add_argument("--flashes", type=int, default=20)
    p.add_argument("--period", type=float, default=0.5, help="seconds between flashes (jittered +-25%%)")
    p.add_argument("--window", action="store_true", help="a window instead of fullscreen")
    p.add_argument("--json", type=Path, metavar="OUT.json")
    p.add_argument("--self-test", action="store_true",
                   help="no camera: read the rendered frame back through a delay line (checks the tool)")
    p.add_argument("--delay", type=float, default=0.05, help="the self-test's delay line, seconds")
    p.set_defaults(func=cmd_latency_test)
