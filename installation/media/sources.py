"""Frame sources: camera, video (rehearsal) and synthetic. One contract for all (aiortc's): recv() returns
the next Frame, and the end of a stream is EndOfStream, never None.

Each source reads on its own thread into a LatestSlot, so a slow consumer gets the newest frame and
latency never accumulates. With lockstep=True the thread waits instead, and every frame arrives in order.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from installation.core.errors import UserError
from installation.core.frames import EndOfStream, Frame, LatestSlot, SlotClosed
from installation.core.timing import pace

log = logging.getLogger("installation.sources")


class Source(Protocol):
    name: str
    fps: float
    size: tuple[int, int]  # (width, height)

    def recv(self, timeout: float | None = None) -> Frame | None: ...

    def close(self) -> None: ...


class ThreadedSource:
    """Runs read_one() on a thread and hands frames over through a latest-wins slot.

    read_one() returns an RGB image, raises EndOfStream when done, or raises OSError when the device
    is gone; then the thread reopens with back-off and the frames resume, counted in `reconnects`.
    """

    name = "source"

    def __init__(self, fps: float, size: tuple[int, int], lockstep: bool = False,
                 on_fault: Callable[[str, str], None] | None = None) -> None:
        self.fps = fps
        self.size = size
        self.lockstep = lockstep
        self.slot: LatestSlot[Frame] = LatestSlot(self.name, lockstep=lockstep)
        self.index = 0
        self.reconnects = 0
        self.errors = 0
        self.connected = False
        self.last_error = ""
        self._on_fault = on_fault
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # subclasses --------------------------------------------------------------
    def open(self) -> None:
        """Open the device or file. Raise OSError (retried) or UserError (fatal)."""

    def read_one(self) -> tuple[np.ndarray, float]:
        """The next (RGB image, source pts in seconds)."""
        raise NotImplementedError

    def release(self) -> None:
        """Close the device or file."""

    # the thread --------------------------------------------------------------
    def start(self) -> ThreadedSource:
        """Start reading (once: a second call does nothing)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"source-{self.name}", daemon=True)
            self._thread.start()
        return self

    def _fault(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        if self._on_fault:
            self._on_fault("source", message)
        else:
            log.warning("%s: %s", self.name, message)

    def _run(self) -> None:
        backoff = 0.25
        got = 0  # frames since the last open: a source that opens but reads nothing must back off too
        while not self._stop.is_set():
            if not self.connected:
                try:
                    self.open()
                    self.connected = True
                    got = 0
                except UserError as e:  # nothing to retry: end the stream, the show (or its supervisor) decides
                    self._fault(f"can't open: {e.render()}")
                    break
                except Exception as e:  # OSError, or a backend's own error: retried with back-off
                    self._fault(f"can't open: {_describe(e)}")
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    self.reconnects += 1
                    continue
            try:
                img, pts = self.read_one()
            except EndOfStream:
                break
            except Exception as e:  # a decoder error is a loss like an unplugged camera: reopen, never die
                self._fault(f"lost: {_describe(e)}")
                self.release()
                self.connected = False
                if got == 0:
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                continue
            got += 1
            backoff = 0.25
            frame = Frame(img, self.index, time.monotonic(), pts)
            self.index += 1
            while not self.slot.put(frame, timeout=0.1):
                if self.slot.closed or self._stop.is_set():
                    break
        self.release()
        self.slot.close()

    def recv(self, timeout: float | None = None) -> Frame | None:
        """The newest frame; None when none came within timeout; EndOfStream when the source is done."""
        try:
            return self.slot.get(timeout)
        except SlotClosed:
            raise EndOfStream(self.name) from None

    @property
    def dropped(self) -> int:
        return self.slot.dropped

    def close(self) -> None:
        self._stop.set()
        self.slot.close()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


def _describe(e: Exception) -> str:
    return str(e) if isinstance(e, OSError) else f"{type(e).__name__}: {e}"


class CameraSource(ThreadedSource):
    """A camera through OpenCV: V4L2 and MJPG where available, one-frame buffer, locked settings."""

    def __init__(self, device: int | str, width: int = 1280, height: int = 720, fps: float = 30.0,
                 exposure: float | None = None, white_balance: float | None = None, focus: float | None = None,
                 lockstep: bool = False, on_fault: Callable[[str, str], None] | None = None) -> None:
        self.name = f"camera {device}"
        super().__init__(fps, (width, height), lockstep, on_fault)
        self.device = device
        self.settings = {"exposure": exposure, "white_balance": white_balance, "focus": focus}
        self.cap: Any = None
        self._t0 = time.monotonic()

    def open(self) -> None:
        dev = self.device
        if isinstance(dev, str) and dev.isdigit():
            dev = int(dev)
        api = cv2.CAP_V4L2 if hasattr(cv2, "CAP_V4L2") and Path("/dev").exists() else cv2.CAP_ANY
        cap = cv2.VideoCapture(dev, api)
        if not cap.isOpened():
            cap.release()
            raise OSError(f"no camera at {self.device!r}")
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))  # raw YUYV caps 720p at ~10 fps
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._lock_settings(cap)
        self.size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.fps = cap.get(cv2.CAP_PROP_FPS) or self.fps
        self.cap = cap
        log.info("%s open at %dx%d %.0f fps", self.name, *self.size, self.fps)

    def _lock_settings(self, cap: Any) -> None:
        """Fixed exposure/white balance/focus where asked: auto modes drift as visitors come and go."""
        exp, wb, focus = self.settings["exposure"], self.settings["white_balance"], self.settings["focus"]
        if exp is not None:
            cap.set(cv2.CAP_PROP_AUTO_EXPOSURE, 1)  # V4L2: 1 = manual
            cap.set(cv2.CAP_PROP_EXPOSURE, exp)
        if wb is not None:
            cap.set(cv2.CAP_PROP_AUTO_WB, 0)
            cap.set(cv2.CAP_PROP_WB_TEMPERATURE, wb)
        if focus is not None:
            cap.set(cv2.CAP_PROP_AUTOFOCUS, 0)
            cap.set(cv2.CAP_PROP_FOCUS, focus)

    def read_one(self) -> tuple[np.ndarray, float]:
        ok, bgr = self.cap.read()
        if not ok or bgr is None:
            raise OSError("camera read failed (unplugged?)")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time.monotonic() - self._t0

    def release(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class VideoSource(ThreadedSource):
    """A recorded file for rehearsal: paced to its own frame rate and looping, or as fast as possible."""

    def __init__(self, path: str | Path, loop: bool = True, realtime: bool = True, lockstep: bool = False,
                 on_fault: Callable[[str, str], None] | None = None) -> None:
        self.path = Path(path)
        self.name = f"video {self.path.name}"
        cap = cv2.VideoCapture(str(self.path))
        ok, first = cap.read() if cap.isOpened() else (False, None)
        if not ok or first is None:
            cap.release()
            raise UserError("can't read video", file=self.path, expected="a video file OpenCV can decode")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        fps = fps if fps and math.isfinite(fps) and 1 <= fps <= 240 else 30.0
        super().__init__(fps, (first.shape[1], first.shape[0]), lockstep, on_fault)
        self.loop = loop
        self.realtime = realtime and not lockstep
        self.loops = 0
        self.cap: Any = None
        self._stat: tuple[int, int, int] | None = None
        self._n_in_file = 0
        self._t_start = 0.0

    def open(self) -> None:
        self._stat = self._file_id()
        self.cap = cv2.VideoCapture(str(self.path))
        if not self.cap.isOpened():
            raise OSError(f"can't open {self.path}")
        self._n_in_file = 0
        if not self._t_start:
            self._t_start = time.monotonic()

    def read_one(self) -> tuple[np.ndarray, float]:
        if self.realtime:  # pace to the file's clock, counted across loops so no drift builds up
            self._t_start = pace(self._t_start, self.index, self.fps, self._stop.wait, resync_after_s=1.0)
        ok, bgr = self.cap.read()
        if not ok or bgr is None:
            if self._n_in_file == 0:
                raise OSError(f"no frames decoded from {self.path}")
            if not self.loop:
                raise EndOfStream(self.name)
            self.loops += 1
            # a pass that ends well before the frames the file's index promises: cut off (a copy that
            # stopped halfway) or damaged; it still loops, but the fault must be seen, not taken for the end
            if self.frame_count and self._n_in_file + 2 < self.frame_count and self._on_fault is not None:
                self._on_fault("source", f"{self.path.name} ends at frame {self._n_in_file} of {self.frame_count}"
                                         " (cut off or damaged); looping from its start")
            if self._file_id() != self._stat:  # the clip was replaced: play the new one from its start
                raise OSError(f"{self.path} changed on disk; reopening")
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._n_in_file = 0
            ok, bgr = self.cap.read()
            if not ok or bgr is None:
                raise OSError(f"can't rewind {self.path}")
        pts = self._n_in_file / self.fps
        self._n_in_file += 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), pts

    def _file_id(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def release(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class SyntheticSource(ThreadedSource):
    """A moving pattern, for machines with no camera: a soft figure crossing a graded room."""

    def __init__(self, width: int = 1280, height: int = 720, fps: float = 30.0, realtime: bool = True,
                 lockstep: bool = False, on_fault: Callable[[str, str], None] | None = None) -> None:
        self.name = "synthetic"
        super().__init__(fps, (width, height), lockstep, on_fault)
        self.realtime = realtime and not lockstep
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        self._xx, self._yy = xx / width, yy / height
        self._t_start = time.monotonic()

    def read_one(self) -> tuple[np.ndarray, float]:
        t = self.index / self.fps
        if self.realtime:
            pace(self._t_start, self.index, self.fps, self._stop.wait)
        xx, yy = self._xx, self._yy
        room = np.stack([0.35 + 0.2 * yy, 0.3 + 0.1 * xx, 0.25 + 0.15 * (1 - yy)], axis=2)
        cx, cy = 0.5 + 0.3 * math.sin(t * 0.7), 0.55 + 0.05 * math.sin(t * 1.9)
        aspect = self.size[0] / self.size[1]
        body = np.exp(-(((xx - cx) * aspect / 0.12) ** 2 + ((yy - cy) / 0.35) ** 2) ** 2)
        head = np.exp(-(((xx - cx) * aspect / 0.07) ** 2 + ((yy - cy + 0.38) / 0.09) ** 2) ** 2)
        fig = np.clip(body + head, 0, 1)[:, :, None]
        stripes = 0.5 + 0.5 * np.sin(40 * (xx + yy) + t * 3)[:, :, None]
        colour = np.array([0.85, 0.55, 0.4], np.float32) * (0.8 + 0.2 * stripes)
        img = room * (1 - fig) + colour * fig
        return (img * 255).astype(np.uint8), t


def open_source(kind: str, *, lockstep: bool = False, realtime: bool = True,
                on_fault: Callable[[str, str], None] | None = None, start: bool = True,
                **cfg: Any) -> ThreadedSource:
    """A source from a show's [source] table (already validated), started unless `start` is False."""
    if kind == "camera":
        src: ThreadedSource = CameraSource(cfg.get("camera", 0), cfg.get("width", 1280), cfg.get("height", 720),
                                           cfg.get("fps", 30.0), cfg.get("exposure"), cfg.get("white_balance"),
                                           cfg.get("focus"), lockstep=lockstep, on_fault=on_fault)
    elif kind == "video":
        src = VideoSource(cfg["video"], loop=cfg.get("loop", True), realtime=realtime, lockstep=lockstep,
                          on_fault=on_fault)
    elif kind == "synthetic":
        src = SyntheticSource(cfg.get("width", 1280), cfg.get("height", 720), cfg.get("fps", 30.0),
                              realtime=realtime, lockstep=lockstep, on_fault=on_fault)
    else:
        raise UserError(f"unknown source kind {kind!r}", key="source.kind", expected="camera, video or synthetic")
    return src.start() if start else src


def list_cameras(max_index: int = 8) -> list[str]:
    """Camera devices this machine shows, by stable path where udev gives one."""
    by_id = Path("/dev/v4l/by-id")
    if by_id.is_dir():
        return sorted(str(p) for p in by_id.iterdir())
    return sorted(str(p) for p in Path("/dev").glob("video*"))[:max_index]


def camera_exists(device: int | str) -> bool | None:
    """Whether a camera device is there; None where that can't be told from the file system (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    if isinstance(device, int) or device.isdigit():
        return Path(f"/dev/video{int(device)}").exists()
    return Path(device).exists() if device.startswith("/") else None  # a URL or pipeline: only opening tells
