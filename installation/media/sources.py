"""Frame sources: camera, video (rehearsal) and synthetic. One contract for all (aiortc's): recv() returns
the next Frame, and the end of a stream is EndOfStream, never None.

A source is a *reader* (what one kind of picture knows: open, read one, release) inside wrappers that
carry what every source needs, written once:
- `Paced` reads no faster than the reader's frame rate, on a clock counted from the start (files and
  patterns; a camera paces itself);
- `Reconnecting` reads on its own thread into a LatestSlot, so a slow consumer gets the newest frame and
  latency never accumulates, and reopens a lost reader with back-off (with lockstep=True the thread waits
  instead, and every frame arrives in order);
- `Inline` reads on the caller's thread, as a naive script's cap.read() would (the bench's naive loop).
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

Fault = Callable[[str, str], None]


class Source(Protocol):
    name: str
    fps: float
    size: tuple[int, int]  # (width, height)

    def recv(self, timeout: float | None = None) -> Frame | None: ...

    def close(self) -> None: ...


class Reader(Protocol):
    """One kind of picture. open() raises OSError (retried) or UserError (fatal); read() returns the next
    (RGB image, source pts in seconds), raises EndOfStream when done, or any other error when the device is
    lost. Both return soon after `stop` is set. release() closes what open() opened; close() what lasts
    across reopenings."""

    name: str
    fps: float
    size: tuple[int, int]

    def open(self, stop: threading.Event) -> None: ...

    def read(self, stop: threading.Event) -> tuple[np.ndarray, float]: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


class BaseReader:
    """Defaults for a reader that has nothing to open or close."""

    name = "source"
    fps = 30.0
    size = (1280, 720)
    paces_itself = False  # a device that delivers at its own rate (a camera, a sender), never faster

    def open(self, stop: threading.Event) -> None:
        pass

    def read(self, stop: threading.Event) -> tuple[np.ndarray, float]:
        raise NotImplementedError

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


class Paced:
    """A reader read no faster than its frame rate. The clock counts frames from the first open, across
    loops and reopenings, so no drift builds up; `resync_after_s`: after a stall longer than this the clock
    restarts instead of bursting to catch up (a file), None: it catches up (a pattern)."""

    def __init__(self, reader: Reader, resync_after_s: float | None = None) -> None:
        self.reader = reader
        self.resync_after_s = resync_after_s
        self.n = 0
        self.t_start: float | None = None

    def open(self, stop: threading.Event) -> None:
        self.reader.open(stop)
        if self.t_start is None:
            self.t_start = time.monotonic()

    def read(self, stop: threading.Event) -> tuple[np.ndarray, float]:
        if self.t_start is None:
            self.t_start = time.monotonic()
        self.t_start = pace(self.t_start, self.n, self.reader.fps, stop.wait, self.resync_after_s)
        self.n += 1
        return self.reader.read(stop)

    def release(self) -> None:
        self.reader.release()

    def close(self) -> None:
        self.reader.close()

    def __getattr__(self, name: str) -> Any:  # the reader's facts (name, fps, a clip's loops) show through
        if name.startswith("_") or name == "reader":
            raise AttributeError(name)
        return getattr(self.reader, name)


class Reconnecting:
    """A reader on a thread of its own, handing frames over through a latest-wins slot; a reader that
    can't open or is lost mid-stream is reopened with back-off, counted in `reconnects` and `errors`."""

    def __init__(self, reader: Reader | Paced, lockstep: bool = False, on_fault: Fault | None = None) -> None:
        self.reader = reader
        self.lockstep = lockstep
        # at the source's own rate (the show plans its workers for that rate), or as fast as it is read
        self.realtime = isinstance(reader, Paced) or getattr(reader, "paces_itself", False)
        self.slot: LatestSlot[Frame] = LatestSlot(reader.name, lockstep=lockstep)
        self.index = 0
        self.reconnects = 0
        self.errors = 0
        self.connected = False
        self.last_error = ""
        self._on_fault = on_fault
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:  # name, fps, size and the reader's own facts
        if name.startswith("_") or name == "reader":  # not made yet (during __init__)
            raise AttributeError(name)
        return getattr(self.reader, name)

    def start(self) -> Reconnecting:
        """Start reading (once: a second call does nothing)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"source-{self.reader.name}", daemon=True)
            self._thread.start()
        return self

    def _fault(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        if self._on_fault:
            self._on_fault("source", message)
        else:
            log.warning("%s: %s", self.reader.name, message)

    def _run(self) -> None:
        backoff = 0.25
        got = 0  # frames since the last open: a source that opens but reads nothing must back off too
        reader, stop = self.reader, self._stop
        while not stop.is_set():
            if not self.connected:
                try:
                    reader.open(stop)
                    self.connected = True
                    got = 0
                except UserError as e:  # nothing to retry: end the stream, the show (or its supervisor) decides
                    self._fault(f"can't open: {e.render()}")
                    break
                except Exception as e:  # OSError, or a backend's own error: retried with back-off
                    self._fault(f"can't open: {_describe(e)}")
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    self.reconnects += 1
                    continue
            try:
                img, pts = reader.read(stop)
            except EndOfStream:
                break
            except Exception as e:  # a decoder error is a loss like an unplugged camera: reopen, never die
                self._fault(f"lost: {_describe(e)}")
                reader.release()
                self.connected = False
                if got == 0:
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                continue
            got += 1
            backoff = 0.25
            frame = Frame(img, self.index, time.monotonic(), pts)
            self.index += 1
            while not self.slot.put(frame, timeout=0.1):
                if self.slot.closed or stop.is_set():
                    break
        reader.release()
        self.slot.close()

    def recv(self, timeout: float | None = None) -> Frame | None:
        """The newest frame; None when none came within timeout; EndOfStream when the source is done."""
        try:
            return self.slot.get(timeout)
        except SlotClosed:
            raise EndOfStream(self.reader.name) from None

    @property
    def dropped(self) -> int:
        return self.slot.dropped

    def close(self) -> None:
        self._stop.set()
        self.slot.close()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        if self._thread is None or not self._thread.is_alive():
            self.reader.close()


class Inline:
    """A reader read on the caller's thread: each recv() returns the next picture, stamped as captured
    then, so no picture waits in a slot (the bench's naive loop; two workers may call it at once)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.realtime = False
        self.connected = True
        self.index = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._opened = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "reader":  # not made yet (during __init__)
            raise AttributeError(name)
        return getattr(self.reader, name)

    def start(self) -> Inline:
        if not self._opened:
            self.reader.open(self._stop)
            self._opened = True
        return self

    def recv(self, timeout: float | None = None) -> Frame | None:
        if self._stop.is_set():
            raise EndOfStream(self.reader.name)
        with self._lock:
            img, pts = self.reader.read(self._stop)
            i = self.index
            self.index += 1
        return Frame(img, i, time.monotonic(), pts)

    @property
    def dropped(self) -> int:
        return 0

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self.reader.release()
            self.reader.close()


def _describe(e: Exception) -> str:
    return str(e) if isinstance(e, OSError) else f"{type(e).__name__}: {e}"


class CameraReader(BaseReader):
    """A camera through OpenCV: V4L2 and MJPG where available, one-frame buffer, locked settings."""

    paces_itself = True

    def __init__(self, device: int | str, width: int = 1280, height: int = 720, fps: float = 30.0,
                 exposure: float | None = None, white_balance: float | None = None,
                 focus: float | None = None) -> None:
        self.name = f"camera {device}"
        self.device = device
        self.size = (width, height)
        self.fps = fps
        self.settings = {"exposure": exposure, "white_balance": white_balance, "focus": focus}
        self.cap: Any = None
        self._t0 = time.monotonic()

    def open(self, stop: threading.Event) -> None:
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

    def read(self, stop: threading.Event) -> tuple[np.ndarray, float]:
        ok, bgr = self.cap.read()
        if not ok or bgr is None:
            raise OSError("camera read failed (unplugged?)")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time.monotonic() - self._t0

    def release(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class VideoReader(BaseReader):
    """A recorded file for rehearsal, looping, or ending with EndOfStream. A file replaced on disk is
    reopened and played from its start; a pass that ends well before its index says is a fault."""

    def __init__(self, path: str | Path, loop: bool = True, on_fault: Fault | None = None) -> None:
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
        self.fps = fps if fps and math.isfinite(fps) and 1 <= fps <= 240 else 30.0
        self.size = (first.shape[1], first.shape[0])
        self.loop = loop
        self.loops = 0
        self.cap: Any = None
        self._on_fault = on_fault
        self._stat: tuple[int, int, int] | None = None
        self._n_in_file = 0

    def open(self, stop: threading.Event) -> None:
        self._stat = self._file_id()
        self.cap = cv2.VideoCapture(str(self.path))
        if not self.cap.isOpened():
            raise OSError(f"can't open {self.path}")
        self._n_in_file = 0

    def read(self, stop: threading.Event) -> tuple[np.ndarray, float]:
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


class SyntheticReader(BaseReader):
    """A moving pattern, for machines with no camera: a soft figure crossing a graded room."""

    def __init__(self, width: int = 1280, height: int = 720, fps: float = 30.0) -> None:
        self.name = "synthetic"
        self.size = (width, height)
        self.fps = fps
        self.n = 0
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        self._xx, self._yy = xx / width, yy / height

    def read(self, stop: threading.Event) -> tuple[np.ndarray, float]:
        t = self.n / self.fps
        self.n += 1
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


def video_source(path: str | Path, loop: bool = True, realtime: bool = True, lockstep: bool = False,
                 on_fault: Fault | None = None) -> Reconnecting:
    """A clip paced to its own frame rate (resynced after a stall, never bursting), or read as fast as the
    show takes it (realtime=False), or every frame in order (lockstep). Not started."""
    reader = VideoReader(path, loop=loop, on_fault=on_fault)
    paced = realtime and not lockstep
    return Reconnecting(Paced(reader, resync_after_s=1.0) if paced else reader, lockstep, on_fault)


def synthetic_source(width: int = 1280, height: int = 720, fps: float = 30.0, realtime: bool = True,
                     lockstep: bool = False, on_fault: Fault | None = None) -> Reconnecting:
    reader = SyntheticReader(width, height, fps)
    return Reconnecting(Paced(reader) if realtime and not lockstep else reader, lockstep, on_fault)


def open_source(kind: str, *, lockstep: bool = False, realtime: bool = True, on_fault: Fault | None = None,
                start: bool = True, **cfg: Any) -> Reconnecting:
    """A source from a show's [source] table (already validated), started unless `start` is False."""
    if kind == "camera":
        camera = CameraReader(cfg.get("camera", 0), cfg.get("width", 1280), cfg.get("height", 720),
                              cfg.get("fps", 30.0), cfg.get("exposure"), cfg.get("white_balance"), cfg.get("focus"))
        src = Reconnecting(camera, lockstep, on_fault)  # a camera paces itself
    elif kind == "video":
        src = video_source(cfg["video"], loop=cfg.get("loop", True), realtime=realtime, lockstep=lockstep,
                           on_fault=on_fault)
    elif kind == "synthetic":
        src = synthetic_source(cfg.get("width", 1280), cfg.get("height", 720), cfg.get("fps", 30.0),
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
