"""NDI: the show's picture to other programs on the network, and another program's picture as a source.

Through ndi-python (module NDIlib), whose wheel carries NDI's own runtime for Linux x86_64 (libndi 6.x):
its calls are the C SDK's one for one, so NDI's documentation applies as written, and it needs nothing
but numpy. (cyndilib, the other wheel with the runtime inside, wraps it in Cython classes and also pulls
in pugixml-cython; both are MIT, the runtime itself is under NDI's licence, shipped in each wheel as
libndi_licenses.txt. See docs/rig.md.)

Sources are found by NDI's finder: senders in this process at once, senders in other programs on this
machine by asking 127.0.0.1 directly (no mDNS daemon needed), others over mDNS or at the addresses in
NDI_EXTRA_IPS (comma separated) where multicast is blocked. An NDI source keeps
the camera's contract (a reader inside sources.Reconnecting): recv() gives the newest frame, a sender that
goes quiet or away is reconnected with back-off, and frames arrive through a latest-wins slot.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import numpy as np

from installation.media.sources import BaseReader, Fault, Reconnecting

log = logging.getLogger("installation.ndi")

STALL_S = 3.0  # no picture from a connected sender for this long: reconnect
FIND_S = 2.0  # how long one attempt looks for the named sender

_init_lock = threading.Lock()
_ready: bool | None = None


def runtime() -> Any:
    """The NDIlib module, initialised once. Raises OSError when NDI can't run here."""
    global _ready
    try:
        import NDIlib as ndi
    except ImportError as e:
        raise OSError(f"ndi-python is not installed ({e})") from None
    with _init_lock:
        if _ready is None:
            _ready = bool(ndi.initialize())
    if not _ready:
        raise OSError("the NDI runtime did not start (NDIlib.initialize() returned false; a CPU without SSE4.2?)")
    return ndi


def _finder(ndi: Any) -> Any:
    fc = ndi.FindCreate()
    fc.show_local_sources = True
    # this machine asked directly as well: senders in other programs here are found with no mDNS daemon
    fc.extra_ips = ",".join(["127.0.0.1", *filter(None, os.environ.get("NDI_EXTRA_IPS", "").split(","))])
    f = ndi.find_create_v2(fc)
    if f is None:
        raise OSError("NDI finder could not be created")
    return f


def list_sources(wait_s: float = FIND_S) -> list[tuple[str, str]]:
    """(name, address) of the NDI senders seen within wait_s. Raises OSError when NDI can't run."""
    ndi = runtime()
    f = _finder(ndi)
    try:
        t_end = time.monotonic() + wait_s
        while time.monotonic() < t_end:
            ndi.find_wait_for_sources(f, int(max(1, (t_end - time.monotonic()) * 1000)))
        return [(s.ndi_name, s.url_address) for s in ndi.find_get_current_sources(f)]
    finally:
        ndi.find_destroy(f)


def match_source(wanted: str, names: list[str]) -> str | None:
    """NDI names are 'MACHINE (name)': the full name, the name in brackets, then a part of either, any case."""
    inner = {n: n[n.find("(") + 1:n.rfind(")")] if n.endswith(")") and "(" in n else n for n in names}
    for test in (lambda n: n == wanted, lambda n: inner[n] == wanted,
                 lambda n: wanted.lower() in n.lower()):
        hits = [n for n in names if test(n)]
        if hits:
            return hits[0]
    return None


class NdiSender:
    """An NDI sender (an outputs.Sink): RGB pictures out as RGBX, on the output's own thread."""

    def __init__(self, name: str, rate: float = 30.0) -> None:
        self.name = name
        self.rate = rate or 30.0
        self._ndi: Any = None
        self._send: Any = None
        self._frame: Any = None
        self._buf: np.ndarray | None = None

    def open(self) -> None:
        ndi = runtime()
        sc = ndi.SendCreate()
        sc.ndi_name = self.name
        sc.clock_video = False  # the show paces the pictures; NDI's clock would block the output thread
        send = ndi.send_create(sc)
        if send is None:
            raise OSError(f"NDI sender {self.name!r} could not be created")
        self._ndi, self._send = ndi, send
        self._frame = ndi.VideoFrameV2()
        self._frame.FourCC = ndi.FOURCC_VIDEO_TYPE_RGBX
        self._frame.frame_rate_N, self._frame.frame_rate_D = round(self.rate * 1000), 1000
        log.info("NDI sender %r", self.name)

    def send(self, rgb: np.ndarray, t_capture: float) -> None:
        h, w = rgb.shape[:2]
        if self._buf is None or self._buf.shape[:2] != (h, w):
            self._buf = np.full((h, w, 4), 255, np.uint8)
        self._buf[:, :, :3] = rgb
        self._frame.data = self._buf
        self._ndi.send_send_video_v2(self._send, self._frame)  # synchronous: the buffer is free on return

    @property
    def connections(self) -> int:
        return int(self._ndi.send_get_no_connections(self._send, 0)) if self._send is not None else 0

    def close(self) -> None:
        if self._send is not None:
            self._ndi.send_destroy(self._send)
            self._send = None


def ndi_source(wanted: str, width: int = 1280, height: int = 720, fps: float = 30.0, lockstep: bool = False,
               on_fault: Fault | None = None) -> Reconnecting:
    """Another program's NDI picture as the show's source (`[source] kind = "ndi"`, name). Not started."""
    return Reconnecting(NdiReader(wanted, width, height, fps), lockstep, on_fault)


class NdiReader(BaseReader):
    """The named sender's pictures."""

    paces_itself = True

    def __init__(self, wanted: str, width: int = 1280, height: int = 720, fps: float = 30.0) -> None:
        self.name = f"ndi {wanted}"
        self.size = (width, height)
        self.fps = fps
        self.wanted = wanted
        self.sender = ""  # the full name of the sender connected to
        self._ndi: Any = None
        self._find: Any = None
        self._recv: Any = None
        self._t0 = time.monotonic()

    def open(self, stop: threading.Event) -> None:
        ndi = self._ndi = runtime()
        if self._find is None:
            self._find = _finder(ndi)
        t_end = time.monotonic() + FIND_S
        found = None
        while found is None and time.monotonic() < t_end and not stop.is_set():
            ndi.find_wait_for_sources(self._find, 250)
            sources = ndi.find_get_current_sources(self._find)
            name = match_source(self.wanted, [s.ndi_name for s in sources])
            found = next((s for s in sources if s.ndi_name == name), None)
        if found is None:
            seen = [s.ndi_name for s in ndi.find_get_current_sources(self._find)]
            raise OSError(f"no NDI source matching {self.wanted!r} (seen: {', '.join(seen) or 'none'})")
        rc = ndi.RecvCreateV3()
        rc.color_format = ndi.RECV_COLOR_FORMAT_RGBX_RGBA
        rc.bandwidth = ndi.RECV_BANDWIDTH_HIGHEST
        recv = ndi.recv_create_v3(rc)
        if recv is None:
            raise OSError("NDI receiver could not be created")
        ndi.recv_connect(recv, found)
        self._recv, self.sender = recv, found.ndi_name
        log.info("NDI source %s (%s)", found.ndi_name, found.url_address)

    def read(self, stop: threading.Event) -> tuple[np.ndarray, float]:
        ndi = self._ndi
        t_stall = time.monotonic() + STALL_S
        while not stop.is_set():
            kind, video, _audio, meta = ndi.recv_capture_v2(self._recv, 200)
            if kind == ndi.FRAME_TYPE_VIDEO:
                try:
                    rgb = np.ascontiguousarray(video.data[:, :, :3])  # a copy: NDI reuses its buffer
                    if video.frame_rate_D and video.frame_rate_N:
                        self.fps = video.frame_rate_N / video.frame_rate_D
                    self.size = (int(video.xres), int(video.yres))
                finally:
                    ndi.recv_free_video_v2(self._recv, video)
                return rgb, time.monotonic() - self._t0
            if kind == ndi.FRAME_TYPE_METADATA:
                ndi.recv_free_metadata(self._recv, meta)
            if time.monotonic() > t_stall:
                raise OSError(f"no picture from NDI source {self.sender or self.wanted!r} for {STALL_S:g} s")
        from installation.core.frames import EndOfStream

        raise EndOfStream(self.name)

    def release(self) -> None:
        if self._recv is not None:
            self._ndi.recv_destroy(self._recv)
            self._recv = None

    def close(self) -> None:  # after the reading thread ended (Reconnecting.close)
        if self._find is not None and self._ndi is not None:
            self._ndi.find_destroy(self._find)
            self._find = None
